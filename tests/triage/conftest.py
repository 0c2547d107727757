"""An incident with a known cause for the copilot's tests: orders-db runs out of
connections; checkout-api (which needs it) fails and web (which needs checkout-api) is
slow. SQLite only: these tests are about reasoning and boundaries, not storage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from baton.correlate.topology import ServiceDef
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.store.models import Incident

PLANTED = "bt_plantedSECRET0123456789abcdefXYZ"


def alert(name, service, at, **annotations):
    return {
        "labels": {
            "alertname": name,
            "service": service,
            "instance": f"{service}:9100",
            "severity": "critical",
        },
        "annotations": {"summary": f"{name} on {service}", **annotations},
        "startsAt": at.isoformat(),
    }


def make_platform(tmp_path, runbooks_dir, clock, **extra):
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        runbooks_dir=runbooks_dir,
        **extra,
    )
    p = Platform(settings, clock).start()
    p.config.declare_services(
        [
            ServiceDef("orders-db", kind="database", owner="team-data"),
            ServiceDef("checkout-api", kind="api", owner="team-shop", depends_on=("orders-db",)),
            ServiceDef("web", kind="web", owner="team-web", depends_on=("checkout-api",)),
        ]
    )
    return p


def open_incident(p, clock, description="", noise=""):
    at = clock.now()
    p.drain.ingest_alertmanager(
        [alert("DBConnectionsExhausted", "orders-db", at, description=description)]
    )
    clock.advance(timedelta(seconds=30))
    p.drain.ingest_alertmanager(
        [
            alert("HighErrorRate", "checkout-api", clock.now(), description=noise),
            alert("HighLatency", "web", clock.now()),
        ]
    )
    clock.advance(timedelta(seconds=200))
    p.scheduler.tick()
    with p.db.session() as s:
        incidents = list(s.scalars(select(Incident)))
    assert len(incidents) == 1, [(i.id, i.services) for i in incidents]
    return incidents[0].id


@pytest.fixture
def copilot_platform(tmp_path, runbooks_dir, clock):
    p = make_platform(tmp_path, runbooks_dir, clock)
    yield p
    p.close()
