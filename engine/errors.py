"""Errors a user can act on.

Every failure that is the user's input (a missing file, a bad column, a broken model folder)
or the environment's (no cache server) is raised as a :class:`LoupeError` whose message is one
plain sentence. The CLI prints that sentence and exits 2; the desktop shows it once.
"""

from __future__ import annotations


class LoupeError(Exception):
    """A failure with a message meant for the user, not a traceback."""


class BadInputError(LoupeError):
    """The input (file, column, text, parameter) cannot be used as given."""


class ModelError(LoupeError):
    """The model cannot be found, loaded or used as asked."""


class JobCancelled(Exception):
    """Raised inside a job when its cancel token is set; not an error for the user."""
