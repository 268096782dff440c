"""Datasets: reading tables and folders (CSV, JSON Lines, Parquet, Arrow, text), their
columns, the demo dataset, filters and column codes. Pure data: no model, no cache."""
