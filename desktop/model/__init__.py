"""The application model: what the window shows, Qt-free and testable without a window.

The document (dataset, embedding run, map and its scores) and the user's view of it
(selection, filter, search, bookmarks, colouring) and a comparison shown beside the map
(:mod:`desktop.model.comparison`) live in :class:`~desktop.model.document.AppModel`;
each change fires an :class:`~desktop.model.events.Event` that views subscribe to. Sessions and
exports read the model, never widgets. Changed on the GUI thread only (operations deliver there).
"""
