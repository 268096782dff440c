"""The cache-aware engine: embeddings, maps, attention and analysis computed once and
stored under content-addressed keys."""
