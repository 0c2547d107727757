"""Authentication before the body, a rate floor and a memory budget, over real sockets.

A real uvicorn serves the app in this process (so the test can read the body budget);
the clients are raw sockets that send headers and then as little body as they like.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from baton.api.app import create_app
from baton.govern.rbac import create_token
from tests.helpers import free_port


@pytest.fixture
def server(platform) -> Iterator[tuple[int, object]]:
    """(port, app) of a real uvicorn serving Baton on the test's platform."""
    platform.settings.body_grace_s = 1.0
    platform.settings.body_min_rate_bps = 50_000
    app = create_app(platform)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", backlog=512)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port, app
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def token(platform) -> str:
    with platform.db.session() as s:
        _, secret = create_token(s, name="sender", role="ingest", at=platform.clock.now())
    return secret


def open_request(port: int, length: int, token: str | None, path: str = "/api/v2/alerts"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: baton\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def push(sock: socket.socket, size: int) -> None:
    """Send body bytes; the server may already have answered and closed."""
    with contextlib.suppress(OSError):
        sock.sendall(b"x" * size)


def status_of(sock: socket.socket, timeout: float) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_no_token_is_401_before_any_body_arrives(server):
    port, _ = server
    started = time.monotonic()
    sock = open_request(port, 4_000_000, None)  # announces 4 MB, sends none of it
    assert status_of(sock, 3) == 401
    assert time.monotonic() - started < 1.0
    sock.close()
    sock = open_request(port, 4_000_000, "bt_not-a-real-token")
    assert status_of(sock, 3) == 401
    sock.close()


def test_a_body_that_never_comes_is_408_within_seconds(server, token):
    port, _ = server
    started = time.monotonic()
    sock = open_request(port, 4_000_000, token)
    assert status_of(sock, 5) == 408
    assert time.monotonic() - started < 3.0  # grace 1 s
    sock.close()


def test_a_trickling_body_is_dropped(server, token):
    port, _ = server
    sock = open_request(port, 1_000_000, token)
    started, code = time.monotonic(), None
    sock.settimeout(0.2)
    while time.monotonic() - started < 8 and code is None:
        push(sock, 1000)  # 5 kB/s: a tenth of the floor
        try:
            code = status_of(sock, 0.2)
        except (TimeoutError, OSError):
            continue
    assert code == 408
    sock.close()


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_many_slow_clients_hold_bounded_memory(server, platform, token):
    """40 anonymous clients pushing 4.9 MB each cost nothing; 40 authenticated slow ones
    share the budget, and those past it are told 503 with Retry-After."""
    port, app = server
    budget = app.state.body_budget
    platform.settings.body_budget_bytes = 4_000_000
    platform.settings.body_min_rate_bps = 1  # slowness alone must not end these early
    platform.settings.body_grace_s = 30
    before = _rss_kb()

    anonymous = [open_request(port, 4_900_000, None) for _ in range(40)]
    for sock in anonymous:
        push(sock, 200_000)  # whatever the kernel takes before the answer
    assert all(status_of(sock, 5) == 401 for sock in anonymous)
    assert budget.peak == 0  # not one byte of their bodies was held
    for sock in anonymous:
        sock.close()

    slow = [open_request(port, 4_900_000, token) for _ in range(40)]
    answers: dict[int, int] = {}
    for _ in range(10):  # each sends 10 x 100 kB, slowly: 40 MB offered in all
        for i, sock in enumerate(slow):
            if i in answers:
                continue
            push(sock, 100_000)
            sock.settimeout(0.01)
            with contextlib.suppress(TimeoutError, OSError, ValueError, IndexError):
                answers[i] = status_of(sock, 0.01)
        time.sleep(0.05)
    assert budget.peak <= 4_000_000
    assert 503 in answers.values(), answers
    assert set(answers.values()) <= {503}
    grew_mb = (_rss_kb() - before) / 1024
    assert grew_mb < 40, f"resident memory grew by {grew_mb:.0f} MB"
    for sock in slow:
        sock.close()
    deadline = time.monotonic() + 10
    while budget.held and time.monotonic() < deadline:
        time.sleep(0.05)  # closed sockets give their share back
    assert budget.held == 0


def test_signed_sources_still_need_and_accept_a_bearer_token(server, platform, token, monkeypatch):
    import httpx

    from baton.sense.receivers import SourceConfig
    from baton.sense.signature import sign

    monkeypatch.setenv("BATON_SECRET_HOOK", "s3cret")
    platform.settings.sources = {"hook": SourceConfig(format="generic", signing_secret="HOOK")}
    port, _ = server
    body = b'[{"name": "Signed"}]'
    url = f"http://127.0.0.1:{port}/api/v1/ingest/hook"
    signed = {"X-Baton-Signature": sign(body, "s3cret")}
    assert httpx.post(url, content=body, headers=signed).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.post(url, content=body, headers=bearer).status_code == 401  # no signature
    resp = httpx.post(url, content=body, headers={**signed, **bearer})
    assert resp.status_code == 200, resp.text
