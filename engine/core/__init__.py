"""The cache-aware engine: embeddings, maps, attention and analysis computed once and
stored under content-addressed keys. :mod:`engine.core.service` is the engine's API in this
process (datasets, runs and maps held by id); :mod:`engine.core.engine` the vector-level
computations under it; :mod:`engine.core.runs` and :mod:`engine.core.cached_values` what those
make and how their cached values are checked."""
