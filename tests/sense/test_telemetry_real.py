"""Telemetry from real senders into a real `baton serve`: a Prometheus (Debian
`prometheus`) scraping a target and remote-writing to Baton, and util-linux `logger`
sending syslog (RFC 5424 and 3164, UDP and TCP). Required on CI, skipped elsewhere.

An anomaly injected into the scraped target becomes a MetricAnomaly event; an error
line with a template its service never sent becomes a NewLogTemplate event.
"""

from __future__ import annotations

import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from baton.harness import loadgen
from baton.store.models import Event
from tests.sense.test_ingest_real import read, required_binary, wait_for

pytestmark = pytest.mark.integration


@contextmanager
def serving(home: Path, **env: str):
    """(URL, technician token) of a `baton serve` with `env` settings."""
    token, port = loadgen.make_token(home, "technician"), loadgen.free_port()
    proc = loadgen.start_baton(home, port, **env)
    try:
        loadgen.wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(30)


class Target(BaseHTTPRequestHandler):
    """A scrape target whose gauge the test sets."""

    value = 50.0

    def do_GET(self):
        body = f"# TYPE app_latency_ms gauge\napp_latency_ms {Target.value}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def points_received(baton: str, token: str) -> float:
    text = httpx.get(f"{baton}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('baton_metric_points_received_total{format="remote-write"}')
    )


def test_real_prometheus_remote_writes_and_an_injected_anomaly_becomes_an_event(tmp_path):
    binary = required_binary("prometheus")
    target = HTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    instance = f"127.0.0.1:{target.server_address[1]}"
    with serving(tmp_path) as (baton, token):
        # what Baton had already learnt of the series (its learning period), imported
        now = time.time()
        history = [[now - 400 + i, 50.0 + (i % 5) * 0.5] for i in range(395)]
        series = {"metric": "app_latency_ms", "labels": {"job": "app", "instance": instance}}
        r = httpx.post(
            f"{baton}/api/v1/metrics",
            content=orjson.dumps([{**series, "points": history}]),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert r.json() == {"series": 1, "points": 395}
        work = tmp_path / "prometheus"
        work.mkdir()
        (work / "prometheus.yml").write_text(
            f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: app
    static_configs: [{{targets: ["{instance}"]}}]
remote_write:
  - url: {baton}/api/v1/write
    authorization: {{credentials: {token}}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
"""
        )
        port = loadgen.free_port()
        argv = [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with open(work / "prometheus.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            arrived = wait_for(lambda: points_received(baton, token) >= 5, timeout=90)
            assert arrived, (work / "prometheus.log").read_text()[-2000:]
            Target.value = 5000.0  # the anomaly
            query = select(Event).where(Event.source == "baton.detect")
            found = wait_for(lambda: read(tmp_path, query), timeout=60)
        finally:
            proc.terminate()
            proc.wait(30)
            target.shutdown()
    assert found, (tmp_path / "serve.log").read_text()[-2000:]
    (event,) = found[0]
    assert (event.name, event.service, event.resource) == ("MetricAnomaly", "app", instance)
    assert event.labels["metric"] == "app_latency_ms"
    assert float(event.annotations["expected_high"]) < 5000.0


def test_real_logger_sends_syslog_in_both_rfcs_over_udp_and_tcp(tmp_path):
    logger = required_binary("logger")
    port = loadgen.free_port()
    ways = {
        "app5424udp": ["--rfc5424", "--udp"],
        "app5424tcp": ["--rfc5424", "--tcp", "--octet-count"],
        "app3164udp": ["--rfc3164", "--udp"],
        "app3164tcp": ["--rfc3164", "--tcp"],
    }
    with serving(tmp_path, BATON_SYSLOG_PORT=str(port)):
        for tag, flags in ways.items():
            common = [logger, *flags, "-n", "127.0.0.1", "-P", str(port), "-t", tag]
            routine = "".join(f"request {i} served in {i % 7} ms\n" for i in range(110))
            subprocess.run([*common, "-p", "user.info"], input=routine.encode(), check=True)
            message = f"{tag} lost its database connection: timeout"
            subprocess.run([*common, "-p", "user.err", message], check=True)
        query = select(Event.service, Event.annotations).where(Event.name == "NewLogTemplate")
        found = wait_for(lambda: len(read(tmp_path, query)) >= 4 and read(tmp_path, query), 60)
    assert found, (tmp_path / "serve.log").read_text()[-2000:]
    by_service = {service: notes for service, notes in found}
    assert set(by_service) == set(ways)
    assert all(
        n["level"] == "err" and "lost its database" in n["example"] for n in by_service.values()
    )
