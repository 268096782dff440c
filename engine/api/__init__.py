"""The engine's API, declared once: :class:`~engine.api.protocol.EngineAPI` and the request and
result dataclasses of :mod:`engine.api.types`. The in-process service, the engine process's proxy,
its worker's dispatch and the wire's allowed types are all derived from it
(:mod:`engine.api.methods`); :mod:`engine.api.flow` is the one map flow every front end runs."""
