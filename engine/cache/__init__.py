"""Loupe cache: codec, content-addressed keys, embedded Valkey server, client with fallback."""
