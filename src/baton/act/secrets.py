"""Secrets are referenced by name in runbooks (`{{ secret.DB_PASSWORD }}`) and injected
only at run time; everything stored or shown carries a mask instead.

A secret NAME is read from the environment variable `BATON_SECRET_<NAME>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

import orjson

SECRET_REF = re.compile(r"\{\{\s*secret\.([A-Za-z0-9_]{1,64})\s*\}\}")
MASK = "***"


def names(doc: Any) -> list[str]:
    """Every secret a runbook document (or part of one) refers to."""
    return sorted(set(SECRET_REF.findall(orjson.dumps(doc).decode())))


def resolve(wanted: Iterable[str]) -> dict[str, str]:
    """`secret.NAME` → value for each wanted name; KeyError names the first missing one."""
    values = {}
    for name in wanted:
        value = os.environ.get(f"BATON_SECRET_{name.upper()}")
        if value is None:
            raise KeyError(f"secret {name} is not set (BATON_SECRET_{name.upper()})")
        values[f"secret.{name}"] = value
    return values


def masked(wanted: Iterable[str]) -> dict[str, str]:
    return {f"secret.{name}": MASK for name in wanted}


def scrub(text: str, values: dict[str, str]) -> str:
    """Remove secret values from text a command or server sent back."""
    for value in sorted(values.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text
