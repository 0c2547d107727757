"""A synthetic month of operations history, written fast with bulk inserts, for the
KPI bench: incidents with alerts, proposals and decisions, executions ending in every
way, some overrides and tickets. Deterministic for a seed."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from baton.store.db import Database
from baton.store.models import Decision, Event, Execution, Incident, Override, Proposal, Ticket

SERVICES = [f"svc-{i}" for i in range(20)]
RUNBOOKS = ["restart-service", "clear-disk", "scale-out", "rollback-deploy", "rotate-log"]
ENDINGS = ["succeeded"] * 85 + ["failed"] * 8 + ["rolled_back"] * 4 + ["vetoed"] * 3
TIERS = ["auto"] * 6 + ["approve"] * 3 + ["recommend"]


def fill_history(db: Database, now: datetime, executions: int, seed: int = 1) -> dict[str, int]:
    """`executions` runs spread over the 30 days before `now`, one incident per 10."""
    rng = random.Random(seed)  # noqa: S311 - synthetic history, not secrets
    start = now - timedelta(days=30)
    span = 30 * 86400
    incidents = max(1, executions // 10)
    inc_rows, event_rows, ticket_rows = [], [], []
    for i in range(1, incidents + 1):
        opened = start + timedelta(seconds=rng.randrange(span - 7200))
        service = rng.choice(SERVICES)
        inc_rows.append(
            {
                "id": i,
                "title": f"{service} degraded",
                "status": "resolved",
                "severity": "warning",
                "origin_service": service,
                "services": [service],
                "grouping": [],
                "opened_at": opened,
                "updated_at": opened,
                "acknowledged_at": opened + timedelta(seconds=rng.randrange(30, 900)),
                "resolved_at": opened + timedelta(seconds=rng.randrange(300, 7200)),
            }
        )
        for k in range(3):
            event_rows.append(_event(i, k, service, opened))
        if i % 5 == 0:
            ticket_rows.append(_ticket(i, service, opened))
    prop_rows, dec_rows, exe_rows, over_rows = [], [], [], []
    for n in range(1, executions + 1):
        inc = inc_rows[(n - 1) % incidents]
        at = inc["opened_at"] + timedelta(seconds=60 + n % 600)
        runbook, status = rng.choice(RUNBOOKS), rng.choice(ENDINGS)
        params = {"service": inc["origin_service"]}
        prop_rows.append(_proposal(n, inc["id"], runbook, params, at))
        dec_rows.append(
            {
                "id": n,
                "proposal_id": n,
                "tier": rng.choice(TIERS),
                "reasons": [],
                "decided_by": "bench",
                "decided_at": at,
            }
        )
        exe_rows.append(
            {
                "id": n,
                "decision_id": n,
                "incident_id": inc["id"],
                "runbook_id": runbook,
                "runbook_version": "bench",
                "params": params,
                "idempotency_key": f"bench-{n}",
                "status": status,
                "verified": status == "succeeded",
                "created_at": at,
                "finished_at": at + timedelta(seconds=90),
                "cancel_requested": False,
            }
        )
        if status in ("vetoed", "rolled_back"):
            kind = "veto" if status == "vetoed" else "rollback"
            over_rows.append(
                {
                    "execution_id": n,
                    "kind": kind,
                    "category": rng.choice(["bad_timing", "wrong_fix"]),
                    "reason": "bench",
                    "actor": rng.choice(["ana", "ben", "cai"]),
                    "created_at": at,
                }
            )
    with db.session() as s:
        for model, rows in (
            (Incident, inc_rows),
            (Event, event_rows),
            (Ticket, ticket_rows),
            (Proposal, prop_rows),
            (Decision, dec_rows),
            (Execution, exe_rows),
            (Override, over_rows),
        ):
            for i in range(0, len(rows), 5000):
                s.execute(model.__table__.insert(), rows[i : i + 5000])
    return {
        "executions": len(exe_rows),
        "incidents": len(inc_rows),
        "alerts": len(event_rows),
        "tickets": len(ticket_rows),
        "overrides": len(over_rows),
    }


def _event(incident: int, k: int, service: str, at: datetime) -> dict[str, Any]:
    return {
        "source": "alertmanager",
        "fingerprint": f"{incident}-{k}",
        "name": "HighLatency" if k else "ErrorRate",
        "service": service,
        "severity": "warning",
        "status": "resolved",
        "labels": {},
        "annotations": {},
        "starts_at": at,
        "first_seen": at,
        "last_seen": at,
        "occurrences": 1,
        "incident_id": incident,
    }


def _ticket(incident: int, service: str, at: datetime) -> dict[str, Any]:
    return {
        "reporter": "user",
        "subject": f"{service} slow",
        "body": "",
        "category": "performance",
        "service": service,
        "status": "new",
        "incident_id": incident,
        "created_at": at,
        "updated_at": at,
    }


def _proposal(
    n: int, incident: int, runbook: str, params: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "id": n,
        "incident_id": incident,
        "runbook_id": runbook,
        "runbook_version": "bench",
        "params": params,
        "confidence": 0.9,
        "rationale": "bench",
        "evidence": [],
        "proposer": "baton.triage/symptom-match/1",
        "status": "decided",
        "created_at": at,
    }
