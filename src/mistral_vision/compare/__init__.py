"""Side-by-side comparisons of backbones (analytic costs from their configs)."""
