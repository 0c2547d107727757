"""Drills: a person practises on a simulated incident in a private sandbox estate.

Each drill has its own BATON_HOME (and so its own database) under
`$BATON_HOME/drills/<person>/<id>`, never the production one. The AI works beside the
trainee with every environment capped at `approve`: it correlates and proposes, and
nothing runs until the trainee decides. The trainee acts through the usual doors (the
console served for the drill, or the CLI against its home), so every decision is in the
drill's audit ledger; the scorecard reads that ledger against the estate's hidden truth
and is kept beside the drill, so leads see who has practised what.
"""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from baton.harness.demo import Demo, DemoPlan
from baton.kernel.audit import Actor
from baton.runtime import drills
from baton.runtime.drills import on_record
from baton.runtime.settings import Settings
from baton.sandbox.faults import SCENARIOS
from baton.store.models import Approval, AuditRecord, Decision, Execution, Incident, Proposal

PERSON_ACTIONS = {
    "approval.approved",
    "approval.rejected",
    "incident.acknowledged",
    "incident.origin",
    "incident.merged",
    "incident.split",
    "automation.paused",
    "execution.requested",
}


@dataclass
class Drill:
    """One person's drill: the estate and platform on their private database."""

    person: str
    scenario: str
    home: Path
    demo: Demo

    @classmethod
    def start(
        cls, settings: Settings, person: str, scenario: str | None = None, seed: int = 1
    ) -> Drill:
        names = sorted(SCENARIOS)
        chosen = scenario or random.Random(seed).choice(names)  # noqa: S311 - not a secret
        if chosen not in SCENARIOS:
            raise ValueError(f"unknown scenario {chosen!r}; choose one of: {', '.join(names)}")
        home = drills.new_home(settings, person)
        private = settings.model_copy(update={"home": home, "database_url": None})
        demo = Demo(private, DemoPlan(seed=seed, scenarios=[]))
        policy = demo.platform.config.policy  # the AI recommends; the trainee decides
        with demo.platform.db.session() as s:
            envs = {d.env for d in demo.platform.config.graph(s).services.values()}
        caps = {env: "approve" for env in {"prod", *envs, *policy.environments}}
        demo.platform.config.policy = policy.model_copy(update={"environments": caps})
        demo.run_for(2, humans=False)
        demo.inject(chosen)
        drill = cls(person, chosen, home, demo)
        drill._save({"person": person, "scenario": chosen, "started": True})
        return drill

    @property
    def trainee(self) -> Actor:
        return Actor(self.person, "human")

    def step(self, minutes: float = 0.5) -> None:
        self.demo.run_for(minutes, humans=False)

    def fixed(self) -> bool:
        return all(t.get("fixed_at") for t in self.demo.estate.ground_truth())

    def scorecard(self) -> dict[str, Any]:
        """How the trainee did, from the drill's ledger against what really happened."""
        faults = self.demo.estate.ground_truth()
        truth = next((t for t in faults if t["scenario"] == self.scenario), None)
        if truth is None:
            raise ValueError("the drill's fault was never injected")
        began: datetime = truth["started_at"]
        with self.demo.platform.db.session() as s:
            incident = _incident_for(s, truth)
            acts = list(
                s.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.actor == self.person, AuditRecord.action.in_(PERSON_ACTIONS))
                    .order_by(AuditRecord.seq)
                )
            )
            runs = list(s.scalars(select(Execution).order_by(Execution.id)))
            ai = list(s.scalars(select(Proposal).order_by(Proposal.id)))
            verdicts = [(a, _named_truth(s, a.subject, truth["root_service"])) for a in acts]
        acked = incident.acknowledged_at if incident and incident.acknowledged_by else None
        decided = [(a, right) for a, right in verdicts if a.action.startswith("approval.")]
        approved = [a for a, _ in decided if a.action == "approval.approved"]
        agreed = [a for a, right in decided if (a.action == "approval.approved") == right]
        # a run that ended well while the estate says the fault is fixed; its checks may
        # still be waiting out their window when the drill stops
        fixing = [
            r
            for r in runs
            if r.status in ("verifying", "succeeded")
            and r.verified is not False
            and truth.get("fixed_at")
        ]
        useless = [r for r in runs if r.status in ("failed", "rolled_back") or r.verified is False]
        origin = incident.origin_service if incident else None
        ai_right = [p for p in ai if p.params.get("service") == truth["root_service"]]
        card = {
            "person": self.person,
            "scenario": self.scenario,
            "root_service": truth["root_service"],
            "time_to_acknowledge_s": _seconds(began, acked),
            "time_to_fix_s": _seconds(began, truth.get("fixed_at")),
            "fixed_by": truth.get("fixed_by"),
            # the trainee's own diagnosis: they pinned the true origin, or approved a fix
            # aimed at it (the incident's current origin may be the AI's alone)
            "origin_found": bool(
                incident
                and incident.origin_set_by == self.person
                and origin == truth["root_service"]
            )
            or any(right for a, right in decided if a.action == "approval.approved"),
            "incident_origin": origin,
            "incident_origin_correct": origin == truth["root_service"],
            "right_runbook": bool(fixing),
            "runbooks_run": [r.runbook_id for r in runs],
            "unnecessary_or_harmful": len(useless),
            "decisions": [f"{a.action} {a.subject}" for a in acts],
            "decided": len(decided),
            "agreed_with_ai": len(approved),  # the AI proposed each; approving is agreeing
            "agreed_with_truth": len(agreed),
            "ai_proposals": [p.runbook_id for p in ai],
            "ai_agreed_with_truth": bool(ai_right),
        }
        self._save(card)
        return card

    def _save(self, card: dict[str, Any]) -> None:
        drills.save(self.home, card)

    def close(self) -> None:
        self.demo.close()


AppFactory = Callable[[Any], Any]  # api.app.create_app: passed in by the edge that owns it


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    """A drill served to its trainee: its own console (on its own port, with a one-time
    password) while simulated time moves at `speed`; ends when the fault is fixed, time
    is up or `stop` is set, and then keeps the scorecard. The CLI and the console both
    start drills this way."""

    drill: Drill
    url: str
    password: str
    speed: float
    server: Any
    stop: threading.Event

    @classmethod
    def open(
        cls,
        settings: Settings,
        person: str,
        factory: AppFactory,
        scenario: str | None = None,
        seed: int = 1,
        speed: float = 10.0,
        port: int | None = None,
        by: Actor | None = None,
    ) -> Live:
        import uvicorn

        drill = Drill.start(settings, person, scenario, seed)
        password = secrets.token_urlsafe(12)
        platform = drill.demo.platform
        platform.commands.set_password(person, "technician", password, by or drill.trainee)
        drill.demo.give_people_real_time(speed)
        host = settings.host
        port = port or _free_port(host)
        server = uvicorn.Server(
            uvicorn.Config(factory(platform), host=host, port=port, log_level="warning")
        )
        threading.Thread(target=server.run, name="baton-drill-console", daemon=True).start()
        url = f"http://{host}:{port}/console"
        return cls(drill, url, password, speed, server, threading.Event())

    def run(self, minutes: float = 30.0) -> dict[str, Any]:
        """Step the estate until the fault is fixed, time is up or `stop` is set; the
        scorecard is kept beside the drill whatever ended it."""
        deadline = time.monotonic() + minutes * 60
        pace = self.drill.demo.plan.step_s / self.speed
        try:
            while not self.stop.is_set() and not self.drill.fixed():
                if time.monotonic() >= deadline:
                    break
                self.drill.step()
                self.stop.wait(pace)
            return self.drill.scorecard()
        finally:
            self.server.should_exit = True
            self.drill.close()

    def in_background(self, minutes: float = 30.0) -> threading.Thread:
        thread = threading.Thread(
            target=self.run, args=(minutes,), name=f"baton-drill-{self.drill.person}", daemon=True
        )
        thread.start()
        return thread


def _named_truth(s: Any, subject: str, root: str) -> bool:
    """Did the proposal behind `approval:N` name the true origin service?"""
    kind, _, number = subject.partition(":")
    if kind != "approval" or not number.isdigit():
        return False
    approval = s.get(Approval, int(number))
    decision = s.get(Decision, approval.decision_id) if approval else None
    proposal = s.get(Proposal, decision.proposal_id) if decision else None
    return proposal is not None and proposal.params.get("service") == root


def _incident_for(s: Any, truth: dict[str, Any]) -> Incident | None:
    touched = {truth["root_service"], *truth.get("affected", ())}
    for inc in s.scalars(select(Incident).order_by(Incident.id)):
        if touched & set(inc.services) and inc.status != "merged":
            return inc
    return None


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 1) if end else None


__all__ = ["Drill", "on_record"]


def starter(settings: Settings, factory: AppFactory, minutes: float = 30.0) -> Callable[..., Live]:
    """What the console calls to start a drill in the background (`baton serve` hands it
    to the console: the console itself cannot import the harness)."""

    def start(person: str, scenario: str | None, seed: int, by: Actor) -> Live:
        live = Live.open(settings, person, factory, scenario, seed, by=by)
        live.in_background(minutes)
        return live

    return start
