"""Kubernetes storms, and replaying recorded alert streams through a fresh Baton."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from typer.testing import CliRunner

from baton.cli import app
from baton.harness.bench import parse_seeds
from baton.harness.replay import read_stream, write_stream
from baton.harness.storm import StormResult, correlate_kube, mixed_share
from baton.sandbox.kube import HELD_OUT_FROM, build_estate, plan_kube_storm


def test_kube_storms_are_deterministic_and_labelled_like_real_exporters():
    storm = plan_kube_storm(2)
    assert storm.episodes == plan_kube_storm(2).episodes
    services = Counter(dict(e.labels).get("service") for e in storm.episodes)
    assert services["kube-state-metrics"] and services["node-exporter"]
    noise = sum(e.fault is None for e in storm.episodes) / len(storm.episodes)
    assert 0.25 <= noise <= 0.5  # 30-40 % of episodes, give or take the last noise source
    batch = next(b for _, b in storm.stream() if b)
    assert len(batch) % storm.senders == 0 and batch[0] == batch[1]  # the HA pair


def test_held_out_estates_share_no_application_names_with_tuned_ones():
    tuned = {w.name for seed in range(1, 9) for w in build_estate(seed).workloads}
    held = {
        w.name
        for seed in range(HELD_OUT_FROM, HELD_OUT_FROM + 8)
        for w in build_estate(seed).workloads
    }
    infra = {
        "coredns",
        "kube-dns",
        "keycloak",
        "dex",
        "auth-server",
        "identity",
        "ingress-nginx-controller",
        "traefik",
        "envoy-gateway",
    }
    assert not (tuned & held) - infra


def test_a_stream_round_trips_and_a_bad_line_is_named():
    storm = plan_kube_storm(3)
    posts = [p for p in storm.stream() if p[1]][:5]
    assert read_stream(write_stream(posts)) == posts
    with pytest.raises(ValueError, match="stream:2"):
        read_stream(['{"at": "2026-01-01T00:00:00Z", "alerts": []}', '{"alerts": []}'])


def test_replay_writes_every_incident_with_its_alerts_origin_and_reasons(tmp_path):
    storm = plan_kube_storm(1)
    stream = tmp_path / "alerts.jsonl"
    stream.write_text("\n".join(write_stream(storm.stream())))
    catalogue = tmp_path / "services.yaml"
    catalogue.write_text(yaml.safe_dump(storm.estate.catalogue()))
    config = tmp_path / "correlation.yaml"
    config.write_text(
        yaml.safe_dump(
            {"transient_hold_s": 120, "impact_matchers": [['severity=~"critical|error"']]}
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "alerts",
            str(stream),
            "--services",
            str(catalogue),
            "--config",
            str(config),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    incidents = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert incidents and all(i["reasons"] and i["origin_reason"] for i in incidents if i["alerts"])
    alert = incidents[0]["alerts"][0]
    assert set(alert) >= {"fingerprint", "labels", "alertname", "entity", "service"}
    origins = {i["origin"] for i in incidents}
    assert set(storm.roots.values()) & origins  # found at least some faults' roots
    bad = CliRunner().invoke(
        app, ["replay", "alerts", str(catalogue), "--services", str(catalogue)]
    )
    assert bad.exit_code != 0 and "not a post" in bad.output


def test_mixed_share_counts_incidents_holding_two_faults():
    r = StormResult(0, 5, 2, ["A", "B", "A", None, ("noise", 1)], [1, 1, 2, 2, 2], {}, {}, {})
    assert mixed_share([r]) == 0.5


def test_seed_lists_parse_and_bad_ones_are_refused():
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds("one")


def test_the_kube_bench_scores_a_storm():
    figures = correlate_kube([4])
    assert figures["storms"] == 1 and figures["faults"] >= 3
    assert 0.0 <= figures["pairwise_f1"] <= 1.0 and figures["mixed_fault_incidents"] is not None


def test_capture_records_what_the_inbox_received_and_replays_it(tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from baton.harness.replay import capture, read_stream, replay
    from baton.kernel.clock import SimulatedClock
    from baton.runtime.platform import Platform
    from baton.runtime.settings import Settings
    from baton.sense import receivers
    from baton.sense.inbox import row, write

    home = tmp_path / "live"
    clock = SimulatedClock(datetime(2026, 5, 12, 9, 0, tzinfo=UTC))
    live = Platform(Settings(home=home), clock).start()
    posts = [p for p in plan_kube_storm(3).stream() if p[1]][:4]
    with live.db.engine.begin() as conn:
        for at, alerts in posts:
            batch = receivers.alertmanager_api(json.dumps(alerts).encode(), at, "alertmanager")
            write(conn, [row(batch, at)])
    with live.db.session() as s:
        recorded = capture(s)
    live.close()
    assert [at for at, _ in recorded] == [at for at, _ in posts]
    assert [len(a) for _, a in recorded] == [len(a) for _, a in posts]
    out = tmp_path / "captured.jsonl"
    monkeypatch.setenv("BATON_HOME", str(home))
    result = CliRunner().invoke(app, ["capture", str(out)])
    assert result.exit_code == 0, result.output
    again = read_stream(out.read_text().splitlines())
    assert len(again) == len(posts)
    assert replay(again, [], None).alerts  # the stream plays back
