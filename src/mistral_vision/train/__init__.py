"""Local training: batches with answer-only labels, the accelerate loop, checkpoints."""
