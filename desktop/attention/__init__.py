"""Attention views: one row's maps per layer and head, and a selection's statistics."""
