"""Structured logging: the JSON-lines log, the in-memory feed for the log view, each record
stamped with the job's context (:mod:`engine.runtime.context`), redaction and the optional GELF
sink."""
