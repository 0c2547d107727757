"""Log lines in the formats the real software writes (nginx, postgres, JVM, postfix...).

Healthy services write a trickle of routine lines; a service in trouble writes what that
trouble looks like from the inside, and its clients write what it looks like from outside.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from baton.sandbox.topology import ServiceSpec


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line as a log shipper would forward it."""

    ts: datetime
    service: str
    host: str
    level: str  # INFO, WARNING, ERROR, CRITICAL
    message: str


INFO, WARNING, ERROR, CRITICAL = "INFO", "WARNING", "ERROR", "CRITICAL"

_NGINX_KINDS = frozenset({"web", "load_balancer"})
_USERS = ("jdoe", "asmith", "mchen", "lgarcia", "pnovak", "kdubois", "rpatel", "ebrown")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)
_PATHS: dict[str, tuple[str, ...]] = {
    "web-portal": ("/", "/account", "/orders", "/cart", "/login", "/static/app.js"),
    "lb-public": ("/", "/orders", "/cart", "/checkout", "/static/app.css"),
    "hr-portal": ("/leave", "/payslips", "/profile", "/timesheets"),
    "wiki": ("/display/IT/VPN+setup", "/display/HR/Onboarding", "/dashboard.action"),
    "api-gateway": ("/v1/catalog/items", "/v1/orders", "/v1/checkout", "/v1/session"),
    "catalog-api": ("/items", "/items/search", "/categories"),
    "orders-api": ("/orders", "/orders/{n}", "/orders/{n}/status"),
    "checkout-api": ("/checkout", "/checkout/{n}/confirm", "/cart/{n}"),
    "payments-api": ("/charges", "/charges/{n}", "/refunds"),
    "inventory-api": ("/stock/{n}", "/reservations"),
}
_SERVER = {
    "web-portal": "portal.example.com",
    "lb-public": "www.example.com",
    "hr-portal": "hr.example.com",
    "wiki": "wiki.example.com",
}
_CLASS = {
    "orders-api": "c.e.orders",
    "checkout-api": "c.e.checkout",
    "payments-api": "c.e.payments",
    "catalog-api": "c.e.catalog",
    "inventory-api": "c.e.inventory",
    "api-gateway": "c.e.gateway",
}


class LogWriter:
    """Renders log lines from one seeded random stream (so output is reproducible)."""

    def __init__(self, rng: random.Random, specs: list[ServiceSpec]) -> None:
        self._r = rng
        hosts = sorted({s.host for s in specs})
        self._ip = {h: f"10.0.{1 + i // 200}.{10 + i % 200}" for i, h in enumerate(hosts)}

    # -- helpers -----------------------------------------------------------------------
    def _client(self) -> str:
        return f"10.0.{self._r.randint(20, 40)}.{self._r.randint(2, 254)}"

    def _path(self, name: str) -> str:
        paths = _PATHS.get(name, ("/", "/health", "/api/v1/items"))
        return self._r.choice(paths).replace("{n}", str(self._r.randint(1000, 99999)))

    def _pkg(self, name: str) -> str:
        return _CLASS.get(name, "c.e." + name.split("-")[0])

    def _line(self, ts: datetime, spec: ServiceSpec, level: str, msg: str) -> LogLine:
        return LogLine(ts, spec.name, spec.host, level, msg)

    # -- routine -----------------------------------------------------------------------
    def normal(self, ts: datetime, spec: ServiceSpec, latency_ms: float) -> LogLine:
        """A routine line for a healthy moment of this service."""
        r, k, name = self._r, spec.kind, spec.name
        rt = max(0.001, latency_ms / 1000.0 * r.uniform(0.2, 0.9))
        user = r.choice(_USERS)
        if k in _NGINX_KINDS:
            status = r.choice((200, 200, 200, 200, 304, 302))
            msg = (
                f'{self._client()} - - "GET {self._path(name)} HTTP/1.1" {status} '
                f'{r.randint(200, 48000)} "-" "{r.choice(_AGENTS)}" rt={rt:.3f}'
            )
        elif k == "api":
            method = r.choice(("GET", "GET", "GET", "POST"))
            msg = (
                f"[http-nio-8080-exec-{r.randint(1, 200)}] {self._pkg(name)}.RequestLog - "
                f"{method} {self._path(name)} 200 {rt * 1000:.0f}ms"
            )
        elif k == "database":
            msg = r.choice(
                (
                    f"LOG:  checkpoint complete: wrote {r.randint(50, 4000)} buffers "
                    f"({r.uniform(0.1, 5):.1f}%); write={r.uniform(1, 30):.3f} s",
                    f'LOG:  automatic vacuum of table "{name.split("-")[0]}.public.items": '
                    f"index scans: 1",
                    f"LOG:  duration: {rt * 1000:.3f} ms  statement: SELECT id, status FROM "  # noqa: S608
                    f"orders WHERE id = {r.randint(1, 999999)}",
                )
            )
        elif k == "auth":
            msg = r.choice(
                (
                    f"login succeeded user={user} client=web-portal mfa=totp",
                    f"token refreshed user={user} client=hr-portal",
                    f"session started user={user} ip={self._client()}",
                )
            )
        elif k == "directory":
            msg = (
                f"conn={r.randint(1000, 99999)} op={r.randint(0, 9)} BIND "
                f'dn="uid={user},ou=people,dc=example,dc=com" method=128'
            )
        elif k == "cache":
            msg = r.choice(
                (
                    f"{r.randint(1000, 9999)}:M * Background saving started by pid "
                    f"{r.randint(10000, 99999)}",
                    f"{r.randint(1000, 9999)}:M * DB saved on disk",
                )
            )
        elif k == "queue":
            msg = (
                f"accepting AMQP connection <0.{r.randint(1000, 9999)}.0> "
                f"({self._client()}:{r.randint(30000, 60000)} -> {self._ip[spec.host]}:5672)"
            )
        elif k == "email":
            msg = (
                f"postfix/smtp[{r.randint(1000, 30000)}]: {r.randrange(16**10):010X}: "
                f"to=<{user}@example.com>, relay=mx.example.com[10.0.9.5]:25, "
                f"delay={rt:.1f}, status=sent (250 2.0.0 OK)"
            )
        elif k == "vpn":
            ip = f"203.0.113.{r.randint(2, 254)}"
            port = r.randint(30000, 60000)
            msg = f"{user}/{ip}:{port} Peer Connection Initiated with [AF_INET]{ip}:{port}"
        elif k == "dns":
            q = r.choice(("portal.example.com", "sso.example.com", "mail.example.com"))
            port = r.randint(30000, 60000)
            msg = f"client {self._client()}#{port} ({q}): query: {q} IN A + (10.0.0.53)"
        elif k == "storage":
            msg = r.choice(
                (
                    f"smbd[{r.randint(1000, 30000)}]: {user} opened file "
                    f"Shared/Q{r.randint(1, 4)}-forecast.xlsx read=Yes write=No",
                    f"PUT /assets/{r.randrange(16**8):08x}.png 200 {rt * 1000:.0f}ms",
                )
            )
        elif k == "worker":
            msg = f"job {r.randrange(16**8):08x} completed in {rt * 1000:.0f}ms"
        elif k == "monitoring":
            msg = f'level=info component=tsdb msg="Head GC completed" duration={rt * 1000:.1f}ms'
        elif k == "reporting":
            rows = r.randint(1000, 90000)
            msg = f'report "daily-sales" generated in {r.uniform(2, 40):.1f}s rows={rows}'
        elif k == "backup":
            msg = f"backup job finished: {r.randint(100, 90000)} files, 0 errors"
        else:
            msg = f"health check ok ({rt * 1000:.0f} ms)"
        return self._line(ts, spec, INFO, msg)

    # -- trouble seen from inside ------------------------------------------------------
    def trouble(self, ts: datetime, spec: ServiceSpec, family: str, pct: float) -> LogLine:
        """What the service itself writes while in trouble of the given family."""
        r, name = self._r, spec.name
        if family == "enospc":
            if spec.kind == "database":
                return self._line(
                    ts,
                    spec,
                    ERROR,
                    f'ERROR:  could not extend file "base/16384/{r.randint(2600, 99999)}": '
                    "No space left on device",
                )
            return self._line(
                ts,
                spec,
                ERROR,
                f"write failed: [Errno 28] No space left on device: "
                f"'/var/lib/{name}/spool/{r.randrange(16**6):06x}.part'",
            )
        if family == "disk_warn":
            return self._line(ts, spec, WARNING, f"filesystem /var/lib/{name} is {pct:.0f}% full")
        if family == "gc":
            heap = 4096
            used = int(heap * min(pct, 99.0) / 100)
            return self._line(
                ts,
                spec,
                WARNING,
                f"[gc] Pause Full (Allocation Failure) {used}M->{used - r.randint(5, 40)}M"
                f"({heap}M) {r.uniform(300, 2500):.3f}ms",
            )
        if family == "regression":
            path = self._path(name)
            return self._line(
                ts,
                spec,
                ERROR,
                r.choice(
                    (
                        f"[http-nio-8080-exec-{r.randint(1, 200)}] {self._pkg(name)}.ErrorHandler"
                        f" - Unhandled exception processing POST {path}: "
                        "java.lang.NullPointerException: Cannot invoke "
                        '"Cart.getCurrency()" because "cart" is null',
                        f"{self._pkg(name)}.ErrorHandler - HTTP 500 for GET {path}: "
                        "IllegalStateException: unexpected response schema version",
                    )
                ),
            )
        if family == "too_many_clients":
            return self._line(
                ts,
                spec,
                CRITICAL,
                r.choice(
                    (
                        "FATAL:  sorry, too many clients already",
                        "FATAL:  remaining connection slots are reserved for non-replication "
                        "superuser connections",
                    )
                ),
            )
        if family == "tls_expired":
            if spec.kind in _NGINX_KINDS:
                msg = (
                    f"[info] {r.randint(1000, 9999)}#0: *{r.randint(1, 99999)} SSL_do_handshake()"
                    " failed (SSL: error:0A000412:SSL routines::sslv3 alert bad certificate:SSL "
                    f"alert number 42) while SSL handshaking, client: {self._client()}"
                )
            else:
                msg = (
                    f"http: TLS handshake error from {self._client()}:{r.randint(30000, 60000)}:"
                    " remote error: tls: bad certificate"
                )
            return self._line(ts, spec, ERROR, msg)
        if family == "saturation":
            return self._line(
                ts,
                spec,
                r.choice((WARNING, ERROR)),
                r.choice(
                    (
                        f"thread pool saturated: active=200 queued={r.randint(300, 5000)} "
                        f"rejected={r.randint(1, 400)}",
                        f"request timed out after 30000 ms: GET {self._path(name)}",
                        f"responding 503 Service Unavailable: queue full ({r.randint(500, 900)})",
                    )
                ),
            )
        return self._line(ts, spec, ERROR, f"request failed: {family}")

    def event(self, ts: datetime, spec: ServiceSpec, event: str, version: str) -> list[LogLine]:
        """One-off happenings: a deploy, an OOM kill."""
        r = self._r
        if event == "deploy":
            msg = f"deploy: deployed version {version} of {spec.name}"
            return [self._line(ts, spec, INFO, msg)]
        if event == "oom":
            pid = r.randint(1000, 60000)
            return [
                self._line(ts, spec, CRITICAL, "java.lang.OutOfMemoryError: Java heap space"),
                self._line(
                    ts,
                    spec,
                    CRITICAL,
                    f"kernel: Out of memory: Killed process {pid} (java) total-vm:"
                    f"{r.randint(6, 9)}123456kB, anon-rss:{r.randint(3, 4)}987654kB",
                ),
            ]
        return [self._line(ts, spec, INFO, event)]

    def action(self, ts: datetime, spec: ServiceSpec, message: str) -> LogLine:
        return self._line(ts, spec, INFO, message)

    # -- trouble seen from outside (clients of a failing dependency) -------------------
    def upstream(
        self, ts: datetime, spec: ServiceSpec, dep: ServiceSpec, cause: str, family: str | None
    ) -> LogLine:
        """What a client writes when the dependency `dep` misbehaves."""
        r = self._r
        nginx = spec.kind in _NGINX_KINDS
        path = self._path(spec.name)
        dep_addr = f"{dep.host}:{443 if dep.kind == 'external' else 8080}"
        if nginx:
            head = f"[error] {r.randint(1000, 9999)}#0: *{r.randint(1, 999999)} "
            tail = (
                f", client: {self._client()}, server: {_SERVER.get(spec.name, spec.name)}, "
                f'request: "GET {path} HTTP/1.1", upstream: "http://{dep_addr}{path}"'
            )
            if cause == "down":
                msg = (
                    head + "connect() failed (111: Connection refused) while connecting to upstream"
                )
            elif cause == "tls":
                msg = (
                    head + "SSL_do_handshake() failed (SSL: error:0A000086:SSL routines::"
                    "certificate verify failed: certificate has expired) while SSL handshaking "
                    "to upstream"
                )
            elif cause == "slow":
                msg = (
                    head + "upstream timed out (110: Connection timed out) while reading "
                    "response header from upstream"
                )
            else:
                return self._line(
                    ts,
                    spec,
                    ERROR,
                    f'{self._client()} - - "GET {path} HTTP/1.1" {r.choice((502, 502, 503, 504))}'
                    f' 157 "-" "{r.choice(_AGENTS)}" rt={r.uniform(0.01, 3):.3f}',
                )
            return self._line(ts, spec, ERROR, msg + tail)
        who = f"{self._pkg(spec.name)}.{dep.name.title().replace('-', '')}Client"
        if dep.kind == "database" and family == "too_many_clients":
            msg = (
                "HikariPool-1 - Connection is not available, request timed out after 30000ms. "
                "(org.postgresql.util.PSQLException: FATAL: sorry, too many clients already)"
            )
        elif dep.kind == "database" and family == "enospc":
            msg = (
                "org.postgresql.util.PSQLException: ERROR: could not extend file: "
                "No space left on device"
            )
        elif cause == "down":
            msg = (
                f"call to {dep.name} ({dep_addr}) failed: connect() failed (111: Connection "
                "refused)"
            )
        elif cause == "tls":
            msg = (
                f"call to https://{dep.host}/ failed: x509: certificate has expired or is not "
                "yet valid"
            )
        elif cause == "slow":
            msg = f"call to {dep.name} ({dep_addr}) failed: Read timed out after 5000 ms"
        else:
            msg = f"call to {dep.name} ({dep_addr}) returned HTTP {r.choice((500, 502, 503))}"
        return self._line(ts, spec, ERROR, f"{who} - {msg}")
