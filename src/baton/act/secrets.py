"""Secrets are referenced by name in runbooks (`{{ secret.DB_PASSWORD }}`) and injected
only at run time; everything stored or shown carries a mask instead.

A secret NAME comes from the secrets file (`BATON_SECRETS_FILE`: a YAML mapping of
NAME: value, readable only by Baton's user) or else from `BATON_SECRET_<NAME>`. Prefer the
file: a process's initial environment stays readable in /proc by programs running as the
same user.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
import yaml

SECRET_REF = re.compile(r"\{\{\s*secret\.([A-Za-z0-9_]{1,64})\s*\}\}")
MASK = "***"
MIN_SCRUB_LEN = 4  # shorter values would mask innocent characters everywhere


def names(doc: Any) -> list[str]:
    """Every secret a runbook document (or part of one) refers to."""
    return sorted(set(SECRET_REF.findall(orjson.dumps(doc).decode())))


def _file() -> dict[str, str]:
    path = os.environ.get("BATON_SECRETS_FILE")
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise KeyError(f"{path}: the secrets file must map NAME: value")
    return {str(k).upper(): str(v) for k, v in data.items()}


def _lookup(name: str, stored: dict[str, str]) -> str | None:
    return stored.get(name.upper(), os.environ.get(f"BATON_SECRET_{name.upper()}"))


def resolve(wanted: Iterable[str]) -> dict[str, str]:
    """`secret.NAME` → value for each wanted name; KeyError names the first missing one."""
    stored, values = _file(), {}
    for name in wanted:
        value = _lookup(name, stored)
        if value is None:
            raise KeyError(
                f"secret {name} is not set (secrets file or BATON_SECRET_{name.upper()})"
            )
        values[f"secret.{name}"] = value
    return values


def known() -> dict[str, str]:
    """Every secret Baton knows, to scrub from any output, referenced by this step or not."""
    found = {f"secret.{k}": v for k, v in _file().items()}
    for key, value in os.environ.items():
        if key.startswith("BATON_SECRET_"):
            found.setdefault(f"secret.{key.removeprefix('BATON_SECRET_')}", value)
    return found


def masked(wanted: Iterable[str]) -> dict[str, str]:
    return {f"secret.{name}": MASK for name in wanted}


def _forms(value: str) -> set[str]:
    """The ways a value shows up in output: as is, URL-encoded, JSON-escaped, repr, base64."""
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        base64.b64encode(value.encode()).decode(),
    }


def scrub(text: str, values: dict[str, str]) -> str:
    """Remove secret values (in their usual encodings) from text a program sent back."""
    forms = {f for v in values.values() if len(v) >= MIN_SCRUB_LEN for f in _forms(v)}
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= MIN_SCRUB_LEN:
            text = text.replace(form, MASK)
    return text
