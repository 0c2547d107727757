"""Integer parameters the database can hold, checked before any handler runs.

Row ids and sequence numbers are 64-bit signed in the database: a bigger number from a
client would overflow the driver (a 500) instead of naming the bad input. Every integer
taken from a path, a query or a body goes through one of these types, so an out-of-range
value is a 422 naming the parameter and a well-formed id that matches nothing a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2**63 - 1  # BIGINT / SQLite INTEGER

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="row id")]
"""A row id in a URL path."""

Seq = Annotated[int, Query(ge=0, le=MAX_ID, description="sequence number to start after")]
"""A sequence position in a query string (0: from the start)."""

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row id inside a JSON body."""
