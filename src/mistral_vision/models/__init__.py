"""Backbones (Mistral / LLaMA families) and tokenizers."""
