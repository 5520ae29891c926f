"""Data selection: choose a subset of a question set for training (``mistral-vision select``)."""
