"""Loupe's Qt front end. Importing this package does not import Qt; ``desktop.app`` does."""
