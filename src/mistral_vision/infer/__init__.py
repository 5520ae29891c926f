"""Inference: label scoring and batched, resumable prediction."""
