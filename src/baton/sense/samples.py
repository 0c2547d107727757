"""Metric intake: Prometheus remote-write, Prometheus query results, CSV and JSON import.

Every format becomes a list of `Series` (a metric name, its labels and aligned arrays of
timestamps in seconds and values), which the `MetricBuffer` holds until the live
detection job takes them. Remote-write bodies are snappy block-compressed protobuf
`WriteRequest`s; the four messages it needs (WriteRequest, TimeSeries, Label, Sample)
are decoded by a small reader of the protobuf wire format here rather than with
generated code, so no `.proto` toolchain is needed and unknown fields (exemplars,
histograms, metadata) are skipped as the format allows. A malformed body is refused
with a `SignalError` naming what is wrong; a bad row of a CSV names its line.
"""

from __future__ import annotations

import csv
import io
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cramjam
import orjson

from baton.sense.normalize import SignalError

MAX_LABELS = 64
MAX_SECONDS = 1e11  # about the year 5000: beyond it a stamp is in the wrong unit


@dataclass
class Series:
    """Points of one series, oldest first (timestamps in Unix seconds)."""

    metric: str
    labels: dict[str, str]
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, tuple(sorted(self.labels.items()))


# --- remote write ------------------------------------------------------------------------
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise SignalError("body", "truncated varint in the protobuf message")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise SignalError("body", "varint longer than 10 bytes")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message; values of type 2 are bytes."""
    out: list[tuple[int, int, Any]] = []
    i, n = 0, len(buf)
    while i < n:
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            if i + 8 > n:
                raise SignalError("body", "truncated 64-bit field")
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > n:
                raise SignalError("body", f"field {number} runs past the end of its message")
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            if i + 4 > n:
                raise SignalError("body", "truncated 32-bit field")
            value, i = buf[i : i + 4], i + 4
        else:
            raise SignalError("body", f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _text(value: Any, where: str) -> str:
    if not isinstance(value, bytes):
        raise SignalError(where, "is not a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise SignalError(where, "is not UTF-8") from None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _timeseries(buf: bytes, where: str) -> Series:
    labels: dict[str, str] = {}
    series = Series("", labels)
    for number, wire, value in _fields(buf):
        if number == 1 and wire == 2:  # Label
            pair = {n: v for n, _, v in _fields(value)}
            labels[_text(pair.get(1, b""), f"{where}.label.name")] = _text(
                pair.get(2, b""), f"{where}.label.value"
            )
        elif number == 2 and wire == 2:  # Sample
            sample = {n: (w, v) for n, w, v in _fields(value)}
            v = struct.unpack("<d", sample[1][1])[0] if 1 in sample else 0.0
            ms = _signed(sample[2][1]) if 2 in sample else 0
            series.timestamps.append(ms / 1000.0)
            series.values.append(v)
    if len(labels) > MAX_LABELS:
        raise SignalError(f"{where}.labels", f"more than {MAX_LABELS} labels")
    series.metric = labels.pop("__name__", "")
    if not series.metric:
        raise SignalError(f"{where}.labels", "has no __name__")
    return series


def remote_write(body: bytes) -> list[Series]:
    """Decode a Prometheus remote-write 1.0 body (snappy block format, protobuf)."""
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise SignalError("body", f"not snappy-compressed ({exc})") from None
    return [
        _timeseries(value, f"timeseries[{i}]")
        for i, (number, wire, value) in enumerate(_fields(raw))
        if number == 1 and wire == 2
    ]


def encode_write_request(series: list[Series]) -> bytes:
    """The inverse of `remote_write`: what a sender posts (used by tests and the loadgen)."""

    def varint(v: int) -> bytes:
        v &= (1 << 64) - 1
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    def lenfield(number: int, payload: bytes) -> bytes:
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    body = bytearray()
    for s in series:
        ts = bytearray()
        for name, value in sorted({"__name__": s.metric, **s.labels}.items()):
            ts += lenfield(1, lenfield(1, name.encode()) + lenfield(2, value.encode()))
        for t, v in zip(s.timestamps, s.values, strict=True):
            sample = (
                varint(1 << 3 | 1) + struct.pack("<d", v) + varint(2 << 3) + varint(int(t * 1000))
            )
            ts += lenfield(2, sample)
        body += lenfield(1, bytes(ts))
    return bytes(cramjam.snappy.compress_raw(bytes(body)))


# --- CSV and JSON --------------------------------------------------------------------------
def _seconds(value: Any, where: str) -> float:
    """Unix seconds from a number or an ISO-8601 / NAB-style (``YYYY-MM-DD HH:MM:SS``) text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                message = f"timestamp {text[:40]!r} is neither a number nor ISO-8601"
                raise SignalError(where, message) from None
            seconds = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    if not -MAX_SECONDS < seconds < MAX_SECONDS:  # also refuses NaN and infinities
        raise SignalError(where, f"timestamp {seconds!r} is not a time (Unix seconds)")
    return seconds


def _value(value: Any, where: str) -> float:
    try:
        return float(value)  # "NaN", "+Inf" are valid here; the detector skips them
    except (TypeError, ValueError):
        raise SignalError(where, f"value {str(value)[:40]!r} is not a number") from None


def _collect(rows: list[tuple[str, dict[str, str], float, float]]) -> list[Series]:
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], Series] = {}
    for metric, labels, ts, value in rows:
        key = metric, tuple(sorted(labels.items()))
        series = grouped.get(key)
        if series is None:
            series = grouped[key] = Series(metric, labels)
        series.timestamps.append(ts)
        series.values.append(value)
    return list(grouped.values())


def from_csv(text: str, metric: str = "value") -> list[Series]:
    """Rows of ``timestamp,value`` plus optional ``metric`` and label columns (a header
    is required); a series without a ``metric`` column is named ``metric``."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "timestamp" not in columns or "value" not in columns:
        raise SignalError("csv", "needs a header with 'timestamp' and 'value' columns")
    extra = [c for c in columns if c not in ("timestamp", "value", "metric")]
    rows = []
    for line, row in enumerate(reader, start=2):
        where = f"csv line {line}"
        if None in row or any(row.get(c) is None for c in columns):
            raise SignalError(
                where, f"has a different number of fields than the header ({len(columns)})"
            )
        name = row.get("metric") or metric
        labels = {c: row[c] for c in extra if row[c]}
        rows.append((name, labels, _seconds(row["timestamp"], where), _value(row["value"], where)))
    return _collect(rows)


def from_json(data: bytes | str) -> list[Series]:
    """Baton's JSON (``[{"metric", "labels", "points": [[ts, value], ...]}]``) or a
    Prometheus HTTP API query result (``{"data": {"result": [...]}}``, matrix or vector)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SignalError("body", f"is not JSON ({exc})") from None
    if isinstance(doc, dict) and "data" in doc:
        return prometheus_result(doc)
    if not isinstance(doc, list):
        raise SignalError("body", "must be a list of series or a Prometheus query result")
    rows = []
    for i, item in enumerate(doc):
        where = f"[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric"), str):
            raise SignalError(f"{where}.metric", "is required (a string)")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise SignalError(f"{where}.labels", "must map names to strings")
        points = item.get("points")
        if not isinstance(points, list):
            raise SignalError(f"{where}.points", "must be a list of [timestamp, value]")
        for j, point in enumerate(points):
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise SignalError(f"{where}.points[{j}]", "must be [timestamp, value]")
            at = f"{where}.points[{j}]"
            rows.append((item["metric"], labels, _seconds(point[0], at), _value(point[1], at)))
    return _collect(rows)


def prometheus_result(doc: dict[str, Any]) -> list[Series]:
    """Series from a ``/api/v1/query`` or ``/api/v1/query_range`` answer."""
    data = doc.get("data")
    if doc.get("status", "success") != "success" or not isinstance(data, dict):
        raise SignalError("data", f"query failed: {str(doc.get('error', 'no data'))[:200]}")
    result = data.get("result") or []
    if not isinstance(result, list):
        raise SignalError("data.result", "must be a list")
    out = []
    for i, item in enumerate(result):
        where = f"data.result[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
            raise SignalError(where, "must be an object with a metric")
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        pairs = item.get("values") or ([item["value"]] if "value" in item else [])
        series = Series(labels.pop("__name__", "") or "query", labels)
        for j, pair in enumerate(pairs if isinstance(pairs, list) else [None]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise SignalError(f"{where}.values[{j}]", "must be [timestamp, value]")
            series.timestamps.append(_seconds(pair[0], where))
            series.values.append(_value(pair[1], where))
        out.append(series)
    return out


# --- the buffer the live detection job drains ------------------------------------------
class MetricBuffer:
    """Points waiting for detection, bounded: at most ``max_series`` series (the least
    recently written is dropped first) and ``max_points`` waiting points per series (the
    oldest are dropped), so a flood from one sender cannot exhaust memory."""

    def __init__(self, max_series: int = 20_000, max_points: int = 10_000) -> None:
        self.max_series, self.max_points = max_series, max_points
        self._waiting: OrderedDict[tuple[Any, ...], Series] = OrderedDict()
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, batch: list[Series]) -> int:
        """Queue a batch; returns the points accepted."""
        accepted = 0
        with self._lock:
            for s in batch:
                key = s.key
                held = self._waiting.get(key)
                if held is None:
                    if len(self._waiting) >= self.max_series:
                        _, gone = self._waiting.popitem(last=False)
                        self.dropped += len(gone.values)
                    held = self._waiting[key] = Series(s.metric, dict(s.labels))
                else:
                    self._waiting.move_to_end(key)
                held.timestamps.extend(s.timestamps)
                held.values.extend(s.values)
                accepted += len(s.values)
                excess = len(held.values) - self.max_points
                if excess > 0:
                    del held.timestamps[:excess], held.values[:excess]
                    self.dropped += excess
        return accepted

    def take(self) -> list[Series]:
        with self._lock:
            taken, self._waiting = list(self._waiting.values()), OrderedDict()
        return taken

    def __len__(self) -> int:
        return len(self._waiting)


# --- pull mode -----------------------------------------------------------------------------
class Puller:
    """Queries a Prometheus HTTP API for configured series (``/api/v1/query_range``),
    each time from where the last pull of that query ended, so no point is read twice.
    A query that fails is reported and the others go on."""

    def __init__(self, url: str, queries: list[str], step_s: float, lookback_s: float) -> None:
        self.url, self.queries, self.step_s, self.lookback_s = (
            url.rstrip("/"),
            queries,
            step_s,
            lookback_s,
        )
        self._until: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def pull(self, client: Any, now: float) -> list[Series]:
        out: list[Series] = []
        for query in self.queries:
            start = self._until.get(query, now - self.lookback_s) + self.step_s / 1000
            params = {
                "query": query,
                "start": f"{start:.3f}",
                "end": f"{now:.3f}",
                "step": f"{self.step_s:g}",
            }
            try:
                resp = client.get(f"{self.url}/api/v1/query_range", params=params)
                found = prometheus_result(resp.json())
            except Exception as exc:  # an unreachable server or a bad query
                self.errors[query] = str(exc)[:300]
                continue
            self.errors.pop(query, None)
            self._until[query] = now
            out.extend(found)
        return out
