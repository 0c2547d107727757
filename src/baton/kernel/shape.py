"""Bounds on the shape of untrusted JSON: how deep it nests, how big its integers are.

Decoders stop at ~1,000 levels and encoders at fewer (orjson writes 255), Python's own
recursion at about as many, and the database holds 64-bit integers: a value past any
of these, accepted at the door, fails later as a 500 or a lost batch. Every body is
checked here once, without recursion, so the refusal names the field instead.
"""

from __future__ import annotations

from typing import Any

from baton.kernel.errors import Invalid

MAX_DEPTH = 32  # far more than any real alert, event or request body nests
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def check_shape(value: Any, where: str = "body", max_depth: int = MAX_DEPTH) -> None:
    """Raise `Invalid` naming the first place nested deeper than `max_depth` or holding an
    integer outside the signed 64-bit range."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int):
            if not INT_MIN <= node <= INT_MAX:
                raise Invalid("integer out of the 64-bit range", path)
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                raise Invalid(f"nested deeper than {max_depth} levels", path)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in items:
                step = f"{path}.{str(key)[:64]}" if isinstance(node, dict) else f"{path}[{key}]"
                stack.append((child, step, depth + 1))
