"""Work the window hands to the engine, as operations: a job (on an engine lane, talking to the
engine only through :class:`~engine.api.protocol.EngineAPI`) and what its partial results, its
result and its failure do, delivered on the GUI thread through the one bridge
(:mod:`desktop.operations.bridge`). :mod:`desktop.operations.engine_ops` holds the window's
operations; each puts its outcome into the application model or the one view that shows it."""
