"""Errors every layer shares, so the edges map them the same way everywhere."""


class Refused(ValueError):
    """A request that is understood but not allowed in the current state (the API: 409).

    Lookups of things that do not exist raise `LookupError` (the API: 404).
    """
