"""Alert load for `baton bench ingest`: a Baton server and (when installed) a real
Prometheus Alertmanager, each started on a free port, driven by the same clients.

Clients are separate processes posting Alertmanager-v2 batches over keep-alive
connections, each waiting for its answer before sending the next batch, as
Prometheus's notifier does.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

ALERT_NAMES = ("HighCPU", "DiskFull", "MemoryPressure", "PodCrashLoop", "HighLatency")
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alert_batch(rng: random.Random, size: int, universe: int = 20_000) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    out = []
    for _ in range(size):
        k = rng.randrange(universe)
        out.append(
            {
                "labels": {
                    "alertname": ALERT_NAMES[k % len(ALERT_NAMES)],
                    "service": f"svc-{k // 10 % 200}",
                    "instance": f"host-{k % 997}:9100",
                    "severity": ("warning", "critical")[k % 2],
                },
                "annotations": {"summary": f"synthetic alert {k}"},
                "startsAt": now,
            }
        )
    return out


def _client(url: str, headers: dict[str, str], seconds: float, batch: int, seed: int, out):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    rng = random.Random(seed)  # noqa: S311 - load shape, not security
    latencies, acknowledged, errors = [], 0, 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = orjson.dumps(alert_batch(rng, batch))
        started = time.perf_counter()
        try:
            conn.request("POST", parts.path, body, headers)
            resp = conn.getresponse()
            resp.read()
            ok = 200 <= resp.status < 300
        except OSError:
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        latencies.append(time.perf_counter() - started)
        acknowledged += batch if ok else 0
        errors += 0 if ok else 1
    out.put((acknowledged, errors, latencies))


def run_load(
    url: str, headers: dict[str, str], *, seconds: float, clients: int, batch: int
) -> dict[str, Any]:
    """Post for `seconds` from `clients` processes; alerts/s counts acknowledged alerts."""
    results: Any = mp.Queue()
    headers = {"Content-Type": "application/json", **headers}
    procs = [
        mp.Process(target=_client, args=(url, headers, seconds, batch, seed, results))
        for seed in range(clients)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    done = [results.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    acknowledged = sum(d[0] for d in done)
    latencies = sorted(x for d in done for x in d[2]) or [0.0]
    return {
        "alerts_per_s": round(acknowledged / wall),
        "acknowledged": acknowledged,
        "requests": len(latencies),
        "errors": sum(d[1] for d in done),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a local URL we built
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def make_token(home: Path, role: str = "ingest") -> str:
    """Create the database in `home` and an API token for the bench or a test."""
    from baton.govern.rbac import create_token
    from baton.runtime.ledger import open_database
    from baton.runtime.settings import Settings
    from baton.store.migrate import upgrade

    settings = Settings(home=home)
    upgrade(settings.db_url)
    db = open_database(settings)
    with db.session() as s:
        _, secret = create_token(s, name=f"load-{role}", role=role, at=datetime.now(UTC))
    db.dispose()
    return secret


def start_baton(home: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """`baton serve` in a child process on `home` (its own SQLite database)."""
    settings_env = {"BATON_HOME": str(home), "BATON_LOG_LEVEL": "WARNING", **env}
    argv = [sys.executable, "-c", "from baton.cli import main; main()", "serve"]
    with open(home / "serve.log", "ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and CLI, fixed arguments
            [*argv, "--port", str(port)],
            env={**os.environ, **settings_env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


@contextmanager
def baton_server(home: Path) -> Iterator[tuple[str, str]]:
    """(base URL, ingest token) of a `baton serve` running until the block ends."""
    token, port = make_token(home), free_port()
    proc = start_baton(home, port)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(30)


def alertmanager_binary() -> str | None:
    return next(filter(None, map(shutil.which, ALERTMANAGER_BINARIES)), None)


@contextmanager
def alertmanager(config: str, binary: str | None = None) -> Iterator[str]:
    """A real Alertmanager (in-memory state in a temp dir) with `config`; yields its URL."""
    binary = binary or alertmanager_binary()
    if binary is None:
        raise FileNotFoundError("no Alertmanager binary (apt-get install prometheus-alertmanager)")
    with tempfile.TemporaryDirectory() as data:
        (Path(data) / "am.yml").write_text(config)
        port = free_port()
        argv = [
            binary,
            f"--config.file={data}/am.yml",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        with open(Path(data) / "am.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)  # noqa: S603
        try:
            wait_until_up(f"http://127.0.0.1:{port}/-/ready", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(30)


NULL_RECEIVER = 'route: {receiver: "null"}\nreceivers: [{name: "null"}]\n'
