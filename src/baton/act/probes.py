"""Built-in `python` plugins: network probes, most useful as `verify` checks (is the
service listening again after the restart?)."""

from __future__ import annotations

import socket
from typing import Any


def tcp_port(host: str, port: int, expect: str = "open", timeout_s: float = 3.0) -> dict[str, Any]:
    """Connect to host:port; `expect: open` wants a listener, `expect: closed` wants none.

    Registered as the `tcp_port` plugin of the `baton.actions` entry-point group.
    """
    if expect not in ("open", "closed"):
        raise ValueError("expect must be 'open' or 'closed'")
    port = int(port)
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    try:
        with socket.create_connection((host, port), timeout=float(timeout_s)):
            state = "open"
    except TimeoutError:
        state = "filtered"  # nothing answered at all: a firewall, or a host that is down
    except OSError:
        state = "closed"
    ok = state == "open" if expect == "open" else state != "open"
    return {"ok": ok, "output": f"{host}:{port} is {state} (want {expect})", "state": state}
