"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from BATON_TEST_POSTGRES_URL (default: the local server's `postgres`
user over TCP). Elsewhere it is skipped when unreachable; with CI set it must be there.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from baton.kernel.clock import SimulatedClock
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get(
    "BATON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _pg_admin_engine():
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def _pg_available() -> str | None:
    try:
        with _pg_admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required on CI but not reachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    return PG_URL


@contextmanager
def _fresh_pg(server: str) -> Iterator[str]:
    name = f"baton_test_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with _fresh_pg(pg_server) as url:
        yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """One database for a whole module (SQLite, then PostgreSQL), for tests that share a
    slow-to-build platform and keep their data apart themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'baton.db'}"
        return
    with _fresh_pg(request.getfixturevalue("pg_server")) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'baton.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    """A copy of the starter catalogue: tests may edit the policy without touching the repo."""
    target = tmp_path / "runbooks"
    shutil.copytree(ROOT / "runbooks", target)
    return target


@pytest.fixture
def settings(db_url: str, tmp_path: Path, runbooks_dir: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, runbooks_dir=runbooks_dir)


@pytest.fixture
def platform(settings: Settings, clock: SimulatedClock) -> Iterator[Platform]:
    p = Platform(settings, clock).start()
    yield p
    p.close()


@pytest.fixture
def demo(settings):
    """The sandbox estate feeding a platform, on the parametrised database."""
    from baton.harness.demo import Demo, DemoPlan

    d = Demo(settings, DemoPlan(seed=3))
    yield d
    d.close()


class _Recorder(BaseHTTPRequestHandler):
    """A local HTTP peer that records what it is sent: 202 for /ok, 500 for /fail."""

    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.seen.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        status = {"/ok": 202, "/fail": 500}.get(self.path, 200)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"done")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_peer():
    """(base URL, list of (path, Authorization, JSON body)) of a recording HTTP server."""
    _Recorder.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()


# --- people on duty at the CLI, against the real API app in-process -------------------
@pytest.fixture
def tokens(demo):
    """Tokens of four people on the demo platform, by name."""
    from baton.govern.rbac import create_token

    out = {}
    with demo.platform.db.session() as s:
        for name, role in (
            ("tia", "technician"),
            ("lee", "lead"),
            ("vic", "viewer"),
            ("tom", "technician"),
        ):
            out[name] = create_token(s, name=name, role=role, at=demo.clock.now())[1]
    return out


@pytest.fixture
def cli(demo, monkeypatch):
    """Run `baton ARGS...` with its API client talking to the demo platform's app."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from baton import cli_oversight
    from baton.api.app import create_app
    from baton.cli import app

    api = create_app(demo.platform)
    monkeypatch.setattr(
        cli_oversight,
        "_client",
        lambda token: TestClient(api, headers={"Authorization": f"Bearer {token}"}),
    )
    monkeypatch.setattr(cli_oversight.out, "width", 240)  # a wide terminal: rows stay whole

    def run(*args):
        return CliRunner().invoke(app, list(args))

    return run
