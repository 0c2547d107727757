"""Replaying a recorded alert stream through a fresh Baton in simulated time.

A stream is JSON lines, one Alertmanager v2 post each: `{"at": "2026-05-12T09:00:30Z",
"alerts": [...]}` (the body `POST /api/v2/alerts` received, and when). The replay starts
an empty Baton (SQLite in a temporary home) on a simulated clock at the first post,
declares the catalogue, then delivers each post at its time and runs the heartbeat every
`step_s` seconds between posts, so holds and windows end when they would have. What it
writes: every incident with its member alerts (fingerprints and labels), origin and the
reasons for each grouping and for the origin. `baton replay alerts` (cli.py) is the
command and `baton capture` records such a stream from a live Baton's inbox; the
correlate bench replays its Kubernetes storms the same way. docs/
correlation.md describes the format, which is kept stable.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.correlate.topology import ServiceDef, load_catalogue
from baton.kernel.clock import SimulatedClock
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.store.models import AuditRecord, Event, InboxBatch, Incident

Post = tuple[datetime, list[dict[str, Any]]]


def read_stream(lines: Iterable[str], where: str = "stream") -> list[Post]:
    """Parse a recorded stream; ValueError naming the line when one is not a post."""
    posts: list[Post] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            at = datetime.fromisoformat(str(item["at"]).replace("Z", "+00:00"))
            alerts = item["alerts"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}:{n}: not a post ({exc})") from None
        if not isinstance(alerts, list) or at.tzinfo is None:
            raise ValueError(f"{where}:{n}: `alerts` must be a list and `at` carry a timezone")
        posts.append((at, alerts))
    posts.sort(key=lambda p: p[0])
    return posts


def write_stream(posts: Iterable[Post]) -> Iterator[str]:
    """The stream's JSON lines (what `baton capture` and the benches write)."""
    for at, alerts in posts:
        yield orjson.dumps({"at": at.isoformat().replace("+00:00", "Z"), "alerts": alerts}).decode()


def capture(session: Session, since: datetime | None = None) -> list[Post]:
    """The Alertmanager posts a live Baton received (its inbox, oldest first), as a
    stream to replay. Only what the inbox still keeps (it is pruned by age and count),
    and the alerts as normalised on receipt: labels, annotations, startsAt, endsAt."""
    query = select(InboxBatch).where(InboxBatch.source.like("alertmanager%"))
    if since is not None:
        query = query.where(InboxBatch.received_at >= since)
    posts: list[Post] = []
    for batch in session.scalars(query.order_by(InboxBatch.received_at, InboxBatch.id)):
        alerts = []
        for record in orjson.loads(batch.events):
            alert = {
                "labels": record["labels"],
                "annotations": record["annotations"],
                "startsAt": record["starts_at"],
            }
            if record["status"] == "resolved":
                alert["endsAt"] = record["ends_at"] or _iso(batch.received_at)
            alerts.append(alert)
        posts.append((batch.received_at, alerts))
    return posts


def read_catalogue(path: Path) -> list[ServiceDef]:
    return load_catalogue(yaml.safe_load(path.read_text()) or [])


@dataclass
class ReplayedAlert:
    id: int
    fingerprint: str
    name: str
    labels: dict[str, Any]
    starts_at: datetime
    service: str | None
    entity: str | None
    incident_id: int | None
    suppressed_by: str | None


@dataclass
class Replay:
    posts: int
    notifications: int
    alerts: list[ReplayedAlert] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)


def replay(
    posts: list[Post],
    services: list[ServiceDef],
    config: dict[str, Any] | None = None,
    step_s: float = 30.0,
    home: Path | None = None,
    inspect: Callable[[Platform], Any] | None = None,
) -> Replay:
    """Play `posts` through a fresh Baton (see the module's docstring); `inspect` looks
    at the platform once the stream is over, before it is closed."""
    if home is None:
        with tempfile.TemporaryDirectory() as tmp:
            return replay(posts, services, config, step_s, Path(tmp), inspect)
    settings = Settings(home=home)
    if config is not None:
        path = home / "correlation.yaml"
        path.write_text(yaml.safe_dump(config))
        settings = Settings(home=home, correlation_file=path)
    if not posts:
        return Replay(0, 0)
    clock = SimulatedClock(posts[0][0])
    platform = Platform(settings, clock).start()
    try:
        if services:
            platform.config.declare_services(services)
        step = timedelta(seconds=step_s)
        for at, alerts in posts:
            while clock.now() + step < at:  # the heartbeat keeps time between posts
                clock.set(clock.now() + step)
                platform.scheduler.tick()
            clock.set(max(at, clock.now()))
            if alerts:
                platform.drain.ingest_alertmanager(alerts)
            platform.scheduler.tick()
        if inspect is not None:
            inspect(platform)
        return _collect(platform, len(posts), sum(len(a) for _, a in posts))
    finally:
        platform.close()


def _collect(platform: Platform, posts: int, notifications: int) -> Replay:
    out = Replay(posts, notifications)
    with platform.db.session() as s:
        for e in s.scalars(select(Event).order_by(Event.id)):
            out.alerts.append(
                ReplayedAlert(
                    e.id,
                    e.fingerprint,
                    e.name,
                    dict(e.labels or {}),
                    e.starts_at,
                    e.service,
                    e.entity,
                    e.incident_id,
                    e.suppressed_by,
                )
            )
        why = {
            r.subject: r.rationale
            for r in s.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "incident.origin")
                .order_by(AuditRecord.seq)
            )
        }
        prints = {a.id: a.fingerprint for a in out.alerts}
        members: dict[int, list[ReplayedAlert]] = {}
        for a in out.alerts:
            if a.incident_id is not None:
                members.setdefault(a.incident_id, []).append(a)
        for inc in s.scalars(select(Incident).order_by(Incident.id)):
            out.incidents.append(
                {
                    "id": inc.id,
                    "title": inc.title,
                    "status": inc.status,
                    "severity": inc.severity,
                    "opened_at": _iso(inc.opened_at),
                    "origin": inc.origin_service,
                    "origin_reason": why.get(f"incident:{inc.id}"),
                    "services": inc.services,
                    "reasons": [_reason(r, prints) for r in inc.grouping],
                    "alerts": [
                        {
                            "fingerprint": a.fingerprint,
                            "alertname": a.name,
                            "labels": a.labels,
                            "starts_at": _iso(a.starts_at),
                            "service": a.service,
                            "entity": a.entity,
                        }
                        for a in members.get(inc.id, [])
                    ],
                }
            )
    return out


def _reason(reason: dict[str, Any], prints: dict[int, str]) -> dict[str, Any]:
    """A grouping reason as written out: which alert (fingerprint) joined, by what rule."""
    out = {k: reason[k] for k in ("rule", "detail", "score", "service") if k in reason}
    if reason.get("event_id") in prints:
        out["fingerprint"] = prints[reason["event_id"]]
    return out


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None
