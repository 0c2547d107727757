"""Metric and log intake: remote-write decoding, CSV/JSON import, the pull client,
syslog and JSON-lines parsing, and the bounded buffers."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import cramjam
import orjson
import pytest

from baton.sense import loglines, samples
from baton.sense.normalize import SignalError
from baton.sense.samples import MetricBuffer, Series

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_remote_write_round_trip_keeps_labels_times_and_values():
    sent = [
        Series("node_cpu", {"job": "node", "instance": "db-1:9100"}, [1.5, 2.5], [0.25, math.inf]),
        Series("up", {"job": "node"}, [3.0], [1.0]),
    ]
    got = samples.remote_write(samples.encode_write_request(sent))
    assert [(s.metric, s.labels, s.timestamps, s.values) for s in got] == [
        (s.metric, s.labels, s.timestamps, s.values) for s in sent
    ]


def test_remote_write_skips_unknown_fields():
    """Metadata (field 3 of WriteRequest) and a 32-bit field are skipped, not refused."""
    inner = samples.encode_write_request([Series("up", {}, [1.0], [1.0])])
    raw = bytes(cramjam.snappy.decompress_raw(inner))
    extra = b"\x1a\x02\x08\x01" + b"\x25" + struct.pack("<f", 1.0)  # field 3 (bytes), 4 (fixed32)
    body = bytes(cramjam.snappy.compress_raw(raw + extra))
    assert [s.metric for s in samples.remote_write(body)] == ["up"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not snappy at all", "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\x05\x0a\x03")), "runs past the end"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\x00")), "has no __name__"),
        (bytes(cramjam.snappy.compress_raw(b"\x0f")), "wire type"),
        (bytes(cramjam.snappy.compress_raw(b"\x08\xff\xff")), "truncated varint"),
    ],
)
def test_malformed_remote_write_bodies_are_refused_with_a_reason(body, message):
    with pytest.raises(SignalError, match=message):
        samples.remote_write(body)


def test_csv_import_groups_series_and_names_a_bad_line():
    text = "timestamp,value,metric,host\n2026-03-02 08:00:00,1.5,cpu,a\n60,NaN,cpu,b\n120,2,cpu,a\n"
    got = {s.labels["host"]: s for s in samples.from_csv(text)}
    assert got["a"].timestamps == [datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp(), 120.0]
    assert math.isnan(got["b"].values[0])  # accepted: detection skips it
    with pytest.raises(SignalError, match="csv line 3: value 'x'"):
        samples.from_csv("timestamp,value\n1,2\n2,x\n")
    with pytest.raises(SignalError, match="csv line 2: timestamp 'yesterday'"):
        samples.from_csv("timestamp,value\nyesterday,2\n")
    with pytest.raises(SignalError, match="csv line 2: has a different number"):
        samples.from_csv("timestamp,value\n1,2,3\n")
    with pytest.raises(SignalError, match="'timestamp' and 'value'"):
        samples.from_csv("time,v\n1,2\n")


def test_json_import_takes_baton_and_prometheus_shapes():
    ours = orjson.dumps([{"metric": "m", "labels": {"a": "1"}, "points": [[1, 2], [2, "3"]]}])
    assert samples.from_json(ours)[0].values == [2.0, 3.0]
    prom = {
        "status": "success",
        "data": {"result": [{"metric": {"__name__": "up", "job": "x"}, "values": [[10, "1"]]}]},
    }
    (s,) = samples.from_json(orjson.dumps(prom))
    assert (s.metric, s.labels, s.timestamps) == ("up", {"job": "x"}, [10.0])
    with pytest.raises(SignalError, match=r"\[0\]\.points\[0\]"):
        samples.from_json(orjson.dumps([{"metric": "m", "points": [[1]]}]))
    with pytest.raises(SignalError, match="query failed"):
        samples.from_json(orjson.dumps({"status": "error", "error": "bad", "data": None}))


class FakePrometheus:
    def __init__(self, fail: set[str]) -> None:
        self.fail, self.asked = fail, []

    def get(self, url, params):
        self.asked.append(params)
        if params["query"] in self.fail:
            raise OSError("connection refused")
        result = [{"metric": {"q": params["query"]}, "values": [[float(params["end"]), "1"]]}]
        doc = {"status": "success", "data": {"result": result}}
        return type("R", (), {"json": lambda self: doc})()


def test_pull_resumes_where_the_last_pull_ended_and_one_bad_query_does_not_stop_others():
    puller = samples.Puller("http://prom:9090/", ["up", "broken"], step_s=60, lookback_s=600)
    client = FakePrometheus({"broken"})
    got = puller.pull(client, 1000.0)
    assert [s.labels["q"] for s in got] == ["up"] and "broken" in puller.errors
    puller.pull(client, 1060.0)
    starts = [float(p["start"]) for p in client.asked if p["query"] == "up"]
    assert starts[0] == pytest.approx(400.06) and starts[1] == pytest.approx(1000.06)


def test_metric_buffer_is_bounded_in_series_and_points():
    buf = MetricBuffer(max_series=100, max_points=50)
    for i in range(1000):
        buf.add([Series("m", {"i": str(i)}, list(range(80)), [1.0] * 80)])
    taken = buf.take()
    assert len(taken) == 100 and all(len(s.values) == 50 for s in taken)
    assert buf.dropped == 900 * 50 + 1000 * 30 and len(buf) == 0


def test_syslog_5424_with_structured_data_and_3164():
    line = loglines.parse_syslog(
        b'<11>1 2026-03-02T08:00:00.5Z db-1 postgres 77 - [x@1 k="a]b\\"c"] \xef\xbb\xbfdisk full',
        "10.0.0.9",
        NOW,
    )
    assert (line.host, line.service, line.level, line.message) == (
        "db-1",
        "postgres",
        "err",
        "disk full",
    )
    assert line.ts == NOW.timestamp() + 0.5
    old = loglines.parse_syslog(b"<14>Mar  2 07:59:00 web-1 nginx[12]: GET / 200", "x", NOW)
    assert (old.host, old.service, old.level, old.message) == (
        "web-1",
        "nginx",
        "info",
        "GET / 200",
    )
    assert old.ts == NOW.timestamp() - 60
    junk = loglines.parse_syslog(b"no header here", "10.0.0.9", NOW)
    assert (junk.host, junk.level, junk.message) == ("10.0.0.9", "notice", "no header here")


def test_tcp_framing_octet_counting_and_newlines():
    buffer = bytearray(b"5 hello<13>one\n<13>two\n9 partial")
    assert loglines.syslog_frames(buffer) == [b"hello", b"<13>one", b"<13>two"]
    assert buffer == b"9 partial"
    buffer += b"!!"
    assert loglines.syslog_frames(buffer) == [b"partial!!"] and not buffer


def test_json_lines_name_the_bad_line():
    body = b'{"message": "a", "level": "ERROR", "service": "s", "ts": 5, "env": "prod"}\n\n'
    (line,) = loglines.from_json_lines(body, NOW)
    assert (line.level, line.service, line.ts, line.labels) == ("error", "s", 5.0, {"env": "prod"})
    with pytest.raises(SignalError, match="line 2"):
        loglines.from_json_lines(b'{"message": "a"}\n[1]\n', NOW)
    with pytest.raises(SignalError, match=r"line 1\.message"):
        loglines.from_json_lines(b'{"msg": 3}', NOW)
