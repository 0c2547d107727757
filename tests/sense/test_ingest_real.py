"""Ingest against real processes: `baton serve` killed with SIGKILL mid-ingest, a real
Alertmanager whose webhook points at Baton, a real Prometheus alerting straight to Baton.

Alertmanager and Prometheus come from Debian's `prometheus-alertmanager` and
`prometheus` packages: required on CI, skipped elsewhere when not installed.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from baton.harness import loadgen
from baton.runtime.settings import Settings
from baton.sense.normalize import events_from_json
from baton.store.db import Database
from baton.store.models import Event, InboxBatch

pytestmark = pytest.mark.integration


def required_binary(*names: str) -> str:
    found = next(filter(None, map(shutil.which, names)), None)
    if found is None:
        package = {"prometheus": "prometheus"}.get(names[0], "prometheus-alertmanager")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{names[0]} is required on CI (apt-get install {package})")
        pytest.skip(f"{names[0]} not installed (apt-get install {package})")
    return found


def read(home: Path, query):
    db = Database(Settings(home=home).db_url)
    try:
        with db.session() as s:
            return list(s.execute(query))
    finally:
        db.dispose()


def received(home: Path) -> list[tuple[str, list]]:
    """(group key, events) of every inbox batch, oldest first."""
    rows = read(home, select(InboxBatch.group_key, InboxBatch.events).order_by(InboxBatch.id))
    return [(key, events_from_json(events)) for key, events in rows]


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    return predicate()


def test_sigkill_during_ingest_loses_no_acknowledged_alert(tmp_path):
    token, port = loadgen.make_token(tmp_path), loadgen.free_port()
    server = loadgen.start_baton(tmp_path, port)
    loadgen.wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
    acknowledged: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def sender(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for i in range(1_000_000):
            if stop.is_set():
                return
            names = [f"Kill{n}x{i}x{j}" for j in range(20)]
            body = orjson.dumps([{"labels": {"alertname": x, "service": "s"}} for x in names])
            try:
                conn.request("POST", "/api/v2/alerts", body, headers)
                resp = conn.getresponse()
                resp.read()
            except OSError:
                return  # the server is gone: this batch was never acknowledged
            if resp.status == 200:
                acknowledged.extend(names)
            else:
                refused.append(resp.status)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acknowledged) >= 600, timeout=120), "ingest never got going"
    os.kill(server.pid, signal.SIGKILL)
    server.wait(10)
    stop.set()
    for t in threads:
        t.join(15)
    assert not refused

    restarted = loadgen.start_baton(tmp_path, port)
    try:
        loadgen.wait_until_up(f"http://127.0.0.1:{port}/healthz", restarted)
        kept = {e.name for _, events in received(tmp_path) for e in events}
        missing = set(acknowledged) - kept
        assert not missing, f"{len(missing)} acknowledged alerts lost, e.g. {sorted(missing)[:3]}"
        # and the restarted server processes what was acknowledged before the kill
        names = wait_for(
            lambda: set(acknowledged) <= {r.name for r in read(tmp_path, select(Event.name))},
            timeout=180,
        )
        assert names, "acknowledged alerts were not all processed after the restart"
    finally:
        restarted.terminate()
        restarted.wait(30)


def alertmanager_config(baton_url: str, token: str) -> str:
    return f"""
route:
  receiver: baton
  group_by: [service]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: baton
    webhook_configs:
      - url: {baton_url}/api/v1/ingest/alertmanager-webhook
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


def test_real_alertmanager_webhook_delivers_grouped_events(tmp_path):
    binary = required_binary(*loadgen.ALERTMANAGER_BINARIES)
    alerts = [
        {"labels": {"alertname": "HighLatency", "service": "checkout", "instance": "web-1"}},
        {"labels": {"alertname": "ErrorRate5xx", "service": "checkout", "instance": "web-2"}},
        {"labels": {"alertname": "DiskFull", "service": "db", "instance": "db-1"}},
    ]
    with (
        loadgen.baton_server(tmp_path) as (baton, token),
        loadgen.alertmanager(alertmanager_config(baton, token), binary) as am,
    ):
        conn = http.client.HTTPConnection(am.split("//")[1], timeout=10)
        conn.request(
            "POST", "/api/v2/alerts", orjson.dumps(alerts), {"Content-Type": "application/json"}
        )
        assert conn.getresponse().status == 200
        batches = wait_for(lambda: len(received(tmp_path)) >= 2 and received(tmp_path))
        events = wait_for(lambda: len(read(tmp_path, select(Event.id))) == 3, timeout=60)
    by_group = {key: sorted(e.name for e in evs) for key, evs in batches}
    assert by_group == {
        '{}:{service="checkout"}': ["ErrorRate5xx", "HighLatency"],
        '{}:{service="db"}': ["DiskFull"],
    }
    for _, evs in batches:  # Alertmanager's own fingerprints are kept
        assert all(len(e.fingerprint) == 16 and e.source == "alertmanager-webhook" for e in evs)
    assert events, "the webhook's events were not processed into Baton events"


def test_real_prometheus_alerts_straight_to_baton(tmp_path):
    binary = required_binary("prometheus")
    with loadgen.baton_server(tmp_path) as (baton, token):
        work = tmp_path / "prometheus"
        work.mkdir()
        (work / "rules.yml").write_text(
            """
groups:
  - name: baton-test
    rules:
      - alert: BatonTestAlwaysFiring
        expr: vector(1)
        labels: {severity: critical, service: checkout}
        annotations: {summary: "fires at once"}
"""
        )
        (work / "prometheus.yml").write_text(
            f"""
global: {{evaluation_interval: 1s, scrape_interval: 5s}}
rule_files: [{work / "rules.yml"}]
alerting:
  alertmanagers:
    - api_version: v2
      authorization: {{credentials: {token}}}
      static_configs: [{{targets: ["{baton.split("//")[1]}"]}}]
"""
        )
        port = loadgen.free_port()
        argv = [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            # the first send can precede Alertmanager discovery; re-send soon, not after 1 min
            "--rules.alert.resend-delay=2s",
        ]
        with open(work / "prometheus.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            found = wait_for(
                lambda: read(tmp_path, select(Event).where(Event.name == "BatonTestAlwaysFiring")),
                timeout=90,
            )
        finally:
            proc.terminate()
            proc.wait(30)
    assert found, (work / "prometheus.log").read_text()[-2000:]
    [(event,)] = found
    assert (event.service, event.severity, event.status) == ("checkout", "critical", "firing")
    assert event.labels["severity"] == "critical"
