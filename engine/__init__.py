"""Loupe's engine: datasets, models, inference, projections, cache, jobs, export, CLI.

Nothing in this package imports Qt, pyqtgraph or ``desktop``; heavy libraries (torch,
transformers, umap) are imported inside the functions that need them.
"""

__version__ = "0.1.0"
