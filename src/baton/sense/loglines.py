"""Log intake: syslog (RFC 5424 and RFC 3164, over UDP and TCP) and JSON lines over HTTP.

Every line becomes a `LogLine` (time, host, service, level, message) in a bounded
`LogBuffer` the live detection job drains. Syslog's numeric severity becomes the usual
level word (3 -> ``err``), so the log-anomaly rule reads one vocabulary whatever the
sender. Over TCP both framings of RFC 6587 are accepted: octet counting (``LEN SP MSG``)
and one message per line. A line that cannot be parsed as syslog is kept as a message
from the sending address rather than lost: the content still matters to detection.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from baton.sense.normalize import SignalError

SEVERITY_WORDS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class LogLine:
    ts: float  # Unix seconds
    host: str
    service: str
    level: str
    message: str
    labels: dict[str, str] = field(default_factory=dict)


_PRI = re.compile(rb"^<(\d{1,3})>")
_5424 = re.compile(
    r"^1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S+) (?P<rest>.*)$", re.S
)
_3164 = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?:(?P<host>[^\s:\[]+) )?"
    r"(?P<tag>[^\s:\[]+)(?:\[(?P<pid>[^\]]*)\])?: ?(?P<msg>.*)$",
    re.S,
)


def _nil(value: str) -> str:
    return "" if value == "-" else value


def _skip_structured_data(rest: str) -> str:
    """The message after RFC 5424's STRUCTURED-DATA (``-`` or ``[id k="v" ...]...``)."""
    if rest.startswith("-"):
        return rest[2:] if rest.startswith("- ") else rest[1:]
    i, n = 0, len(rest)
    while i < n and rest[i] == "[":
        quoted = False
        while i < n:
            c = rest[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                i += 1
                break
            i += 1
    return rest[i + 1 :] if rest[i : i + 1] == " " else rest[i:]


def parse_syslog(raw: bytes, peer: str, received: datetime) -> LogLine:
    """One syslog message (either RFC); ``peer`` names the sender when the line does not."""
    pri = _PRI.match(raw)
    severity = 5 if pri is None else min(int(pri.group(1)), 191) % 8
    text = raw[pri.end() if pri else 0 :].decode("utf-8", "replace").rstrip("\r\n\x00")
    level = SEVERITY_WORDS[severity]
    if m := _5424.match(text):
        message = _skip_structured_data(m["rest"]).removeprefix("\ufeff")
        try:
            ts = datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            ts = received.timestamp()
        host, app = _nil(m["host"]) or peer, _nil(m["app"])
        return LogLine(ts, host, app, level, message, {"msgid": _nil(m["msgid"])})
    if m := _3164.match(text):
        try:  # RFC 3164 has no year: the year it was received
            stamp = datetime.strptime(f"{received.year} {m['ts']}", "%Y %b %d %H:%M:%S")
            ts = stamp.replace(tzinfo=UTC).timestamp()
        except ValueError:
            ts = received.timestamp()
        return LogLine(ts, m["host"] or peer, m["tag"], level, m["msg"])
    return LogLine(received.timestamp(), peer, "", level, text)


def syslog_frames(buffer: bytearray) -> list[bytes]:
    """Complete messages at the front of a TCP stream's buffer (consumed from it)."""
    out: list[bytes] = []
    while buffer:
        head = re.match(rb"^(\d{1,6}) ", buffer)
        if head:  # octet counting
            size, start = int(head.group(1)), head.end()
            if len(buffer) < start + size:
                break
            out.append(bytes(buffer[start : start + size]))
            del buffer[: start + size]
            continue
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_LINE:  # a sender that never ends its line
                out.append(bytes(buffer[:MAX_LINE]))
                del buffer[:]
            break
        line = bytes(buffer[:end]).strip()
        del buffer[: end + 1]
        if line:
            out.append(line)
    return out


def from_json_lines(body: bytes, received: datetime) -> list[LogLine]:
    """One JSON object per line: ``message`` (or ``msg``), optional ``level``,
    ``timestamp`` (Unix seconds or ISO-8601), ``host``, ``service``; other string
    fields become labels. The error names the line."""
    out = []
    for number, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SignalError(f"line {number}", "is not a JSON object") from None
        if not isinstance(doc, dict):
            raise SignalError(f"line {number}", "is not a JSON object")
        message = doc.pop("message", None) or doc.pop("msg", None)
        if not isinstance(message, str):
            raise SignalError(f"line {number}.message", "is required (a string)")
        stamp = doc.pop("timestamp", None) or doc.pop("ts", None) or doc.pop("time", None)
        out.append(
            LogLine(
                _when(stamp, received, number),
                str(doc.pop("host", "") or ""),
                str(doc.pop("service", "") or doc.pop("app", "") or ""),
                str(doc.pop("level", "") or doc.pop("severity", "") or "info").lower(),
                message,
                {k: v for k, v in doc.items() if isinstance(v, str)},
            )
        )
    return out


def _when(stamp: object, received: datetime, number: int) -> float:
    if stamp is None:
        return received.timestamp()
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return float(stamp)
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise SignalError(f"line {number}.timestamp", "is neither a number nor ISO-8601") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


class LogBuffer:
    """Lines waiting for detection; at most ``capacity`` (the oldest are dropped)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.received = 0

    def add(self, lines: list[LogLine]) -> int:
        with self._lock:
            self._lines.extend(lines)
            self.received += len(lines)
        return len(lines)

    def take(self) -> list[LogLine]:
        with self._lock:
            taken = list(self._lines)
            self._lines.clear()
        return taken

    def __len__(self) -> int:
        return len(self._lines)


class SyslogListener:
    """UDP and TCP syslog on one port, served by an asyncio loop in its own thread."""

    def __init__(
        self,
        host: str,
        port: int,
        sink: Callable[[list[LogLine]], object],
        now: Callable[[], datetime],
    ) -> None:
        self.host, self.port, self.sink, self.now = host, port, sink, now
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="baton-syslog", daemon=True
        )
        self._closers: list[Callable[[], object]] = []

    def start(self) -> SyslogListener:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(10)
        return self

    async def _open(self) -> None:
        listener = self

        class Datagrams(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                listener.sink([parse_syslog(data, addr[0], listener.now())])

        transport, _ = await self._loop.create_datagram_endpoint(
            Datagrams, local_addr=(self.host, self.port)
        )
        server = await asyncio.start_server(self._stream, self.host, self.port)
        self._closers += [transport.close, server.close]

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        buffer = bytearray()
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                frames = syslog_frames(buffer)
                if frames:
                    at = self.now()
                    self.sink([parse_syslog(f, peer, at) for f in frames])
            if buffer.strip():
                self.sink([parse_syslog(bytes(buffer).strip(), peer, self.now())])
        finally:
            writer.close()

    def close(self) -> None:
        def stop() -> None:
            for close in self._closers:
                close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(10)
