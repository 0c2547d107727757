"""Errors every layer shares, so the edges map them the same way everywhere.

Each kind says what went wrong, not where: the API maps them in one handler (refused →
409, not found → 404, invalid → 422 naming the field) and the CLI prints them.
"""

from __future__ import annotations


class BatonError(Exception):
    """A failure the person asking can act on; its message is safe to show them."""


class Refused(BatonError):
    """Understood but not allowed in the current state (the API: 409).

    Not a `ValueError`: a handler of bad input must never catch a refusal by accident.
    """


class NotFound(BatonError, LookupError):
    """The thing asked for does not exist (the API: 404)."""


class Invalid(BatonError, ValueError):
    """Bad input, naming the field it came from (the API: 422)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
