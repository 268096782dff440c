"""Models: finding and loading them, inference (embeddings per layer) and attention maps
with their statistics. The only rooms that import torch and transformers."""
