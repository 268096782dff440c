"""Structured logging: the JSON-lines log, the in-memory feed for the log view, context
fields, redaction and the optional GELF sink."""
