"""What people read to decide, assembled once for every door (API and console), so an
approval shows the same context wherever it is looked at."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from baton.act.runbook import dry_run
from baton.act.versions import get_version
from baton.correlate import incidents
from baton.govern import breaker
from baton.govern.flows import decision_of, params_of, proposal_of
from baton.govern.flows import to_dict as approval_dict
from baton.learn.kpis import track_record
from baton.store.models import Approval
from baton.triage.propose import to_dict as proposal_dict


def approval_view(s: Session, a: Approval) -> dict[str, Any]:
    """Everything a person needs to decide: incident and evidence, the exact runbook
    version and what it would run, its risk, reversibility and track record."""
    item = approval_dict(a)
    decision = decision_of(s, a)
    proposal = proposal_of(s, a)
    runbook = get_version(s, proposal.runbook_id, proposal.runbook_version)
    incident = incidents.get(s, proposal.incident_id) if proposal.incident_id else None
    item["decision"] = {"tier": decision.tier, "reasons": decision.reasons}
    item["proposal"] = proposal_dict(proposal)
    item["incident"] = incidents.to_dict(incident) if incident else None
    item["runbook"] = {
        "id": runbook.id,
        "version": runbook.version,
        "title": runbook.title,
        "owner": runbook.owner,
        "risk": runbook.risk,
        "reversible": runbook.reversible,
        "track_record": track_record(s, runbook.id),
    }
    item["params"] = params_of(s, a)
    item["dry_run"] = dry_run(runbook, item["params"])
    return item


def runbook_rows(s: Session, catalogue: Any) -> list[dict[str, Any]]:
    """Each loaded runbook with its autonomy, owner, track record and breaker state."""
    return [
        {
            "id": rb.id,
            "version": rb.version,
            "title": rb.title,
            "owner": rb.owner,
            "risk": rb.risk,
            "reversible": rb.reversible,
            "autonomy": rb.doc["autonomy"],
            "track_record": track_record(s, rb.id),
            "breaker": breaker.state(s, rb.id),
        }
        for rb in catalogue
    ]
