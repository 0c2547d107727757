"""`baton demo`: the sandbox estate feeding a live Baton in simulated time.

The estate only talks to the platform the way a real estate would — Alertmanager-format
alerts and users' tickets — and the platform acts back on it only through runbooks. The
ground truth (which fault, where) is read here solely to score the run at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from baton.correlate.topology import ServiceDef
from baton.govern import oncall
from baton.govern.flows import pending_approvals
from baton.kernel import audit
from baton.kernel.audit import Actor
from baton.kernel.clock import SimulatedClock
from baton.learn import trust
from baton.learn.figures import Scope, kpis
from baton.runtime.pipeline import Observer
from baton.runtime.platform import Platform
from baton.runtime.settings import Settings
from baton.sandbox import Estate
from baton.sandbox.estate import Signals
from baton.sense.loglines import LogLine
from baton.sense.samples import Series
from baton.store.db import Database, redact_url
from baton.store.migrate import upgrade
from baton.store.models import (
    Approval,
    AuditRecord,
    Base,
    Decision,
    Escalation,
    Event,
    Execution,
    Incident,
    Meta,
    Override,
    Proposal,
    Ticket,
)

DEMO_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning
DEMO_MARK = "origin"
RESOLUTIONS = ("automatic", "ai_assisted", "human_only")
SIM_APPROVERS = (Actor("sim-lead", "human"), Actor("sim-oncall", "human"))
ACK_TIMEOUT_S, LEVEL_DELAY_S = 900, 600  # a person's 15 and 10 minutes


class DemoRefused(RuntimeError):
    """The target database holds data that is not a demo's; the demo will not touch it."""


@dataclass
class DemoPlan:
    seed: int = 1
    step_s: float = 30.0
    baseline_min: int = 20
    spacing_min: int = 50
    tail_min: int = 60
    approve_after_min: float = 5.0  # simulated humans approve in --once mode
    scenarios: list[str] = field(default_factory=list)  # empty = every scenario
    veto_runbook: str | None = "scale-out"  # a person vetoes its first run ("bad timing")
    pause_during: str | None = "certificate_expiry"  # automation paused for maintenance
    pause_min: int = 20
    late_fault: tuple[str, str] | None = ("bad_deploy", "inventory-api")  # for the next shift
    late_min: int = 30
    # watch: the estate's metrics and logs feed live detection directly; before the demo
    # starts the detectors watch this much of the estate's normal life (their learning
    # period), as a Baton that had been running would have
    watch: bool = False
    watch_history_min: int = 360


def estate_services(estate: Estate) -> list[ServiceDef]:
    return [
        ServiceDef(
            name=s.name,
            kind=s.kind,
            host=s.host,
            owner=s.owner,
            env=s.env,
            criticality=s.criticality,
            user_facing=s.user_facing,
            depends_on=tuple(s.depends_on),
        )
        for s in estate.topology()
    ]


class EstateTarget:
    """The estate as a runbook target; a lock keeps the executor and the feed apart."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.lock = threading.RLock()

    def remediate(self, action: str, service: str, **params: Any) -> Any:
        with self.lock:
            return self.estate.remediate(action, service, **params)

    def observe(self, service: str, metric: str) -> float:
        with self.lock:
            return self.estate.observe(service, metric)


def demo_settings(settings: Settings) -> Settings:
    """The demo keeps its own database under $BATON_HOME/demo unless a URL is given, so
    trying the demo never touches the data of a Baton you run for real; its detectors
    neither load nor save state (each demo starts from nothing)."""
    if settings.database_url:
        return settings.model_copy(update={"watch_save_s": 0.0})
    return settings.model_copy(update={"home": settings.home / "demo", "watch_save_s": 0.0})


def _audit_head(session: Any) -> int:
    return int(session.scalar(select(func.max(AuditRecord.seq))) or 0)


def prepare_database(settings: Settings, reset: bool) -> None:
    """Start from an empty demo database; refuse to wipe data a demo did not leave.

    A database counts as the demo's own only if a demo created it and nothing was
    written to it after the demo finished (its audit head is where the demo left it).
    """
    db = Database(settings.db_url)
    try:
        upgrade(db.url)
        with db.session() as s:
            mark = s.get(Meta, DEMO_MARK)
            holding = [
                t.name
                for t in Base.metadata.sorted_tables
                if t.name != "meta" and s.execute(select(t).limit(1)).first() is not None
            ]
            head = _audit_head(s)
        ours = mark is not None and mark.value in ("demo:running", f"demo:{head}")
        if holding and not ours and not reset:
            why = "no demo created it" if mark is None else "it was used after the last demo"
            raise DemoRefused(
                f"the database at {redact_url(settings.db_url)} holds data ({', '.join(holding)})"
                f" and {why}; set BATON_HOME to another directory or pass --reset to wipe it"
            )
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        if settings.audit_witness_path is not None:  # it saw the chain just dropped
            settings.audit_witness_path.unlink(missing_ok=True)
        upgrade(db.url)
        with db.session() as s:
            s.add(Meta(key=DEMO_MARK, value="demo:running"))
    finally:
        db.dispose()


class Demo:
    """Runs the estate and the platform together on one simulated clock."""

    def __init__(
        self,
        settings: Settings,
        plan: DemoPlan,
        observer: Observer | None = None,
        reset: bool = False,
    ) -> None:
        prepare_database(settings, reset)
        self.plan = plan
        self.clock = SimulatedClock(DEMO_START)
        history = timedelta(minutes=plan.watch_history_min if plan.watch else 0)
        self.estate = Estate(seed=plan.seed, start=DEMO_START - history, step_seconds=plan.step_s)
        self.target = EstateTarget(self.estate)
        self.observer = observer or (lambda kind, data: None)
        self.platform = Platform(
            settings,
            self.clock,
            targets={"sandbox": self.target},
            observer=self._observe,
            trust_moves=False,  # never rewrite the checkout's policy.yaml from a demo
        ).start()
        self.platform.config.declare_services(estate_services(self.estate))
        self._staff()
        self.injected: list[dict[str, Any]] = []
        self._vetoed = False
        self._approval_seen: dict[int, datetime] = {}
        self._approval_of: dict[int, int] = {}  # proposal -> its approval request
        with self.platform.db.session() as s:
            self._people_seq = _audit_head(s)  # people's actions after this are shown
        if plan.watch:
            self._watch_history(plan.watch_history_min)

    # --- telemetry into live detection -------------------------------------------------
    def _feed(self, signals: Signals) -> None:
        """The estate's metrics and logs, as a scrape and a log shipper would send them."""
        series: dict[tuple[str, str, str], Series] = {}
        for m in signals.metrics:
            key = (m.metric, m.service, m.host)
            found = series.get(key)
            if found is None:
                found = series[key] = Series(m.metric, {"service": m.service, "instance": m.host})
            found.timestamps.append(m.ts.timestamp())
            found.values.append(m.value)
        self.platform.watch.metrics.add(list(series.values()))
        lines = [
            LogLine(x.ts.timestamp(), x.host, x.service, x.level.lower(), x.message)
            for x in signals.logs
        ]
        self.platform.watch.logs.add(lines)

    def _watch_history(self, minutes: int) -> None:
        """Live detection watches the estate's normal life before the demo starts (what
        a Baton already running would have seen); its alerts and tickets are dropped."""
        at = DEMO_START - timedelta(minutes=minutes)
        while at < DEMO_START:
            at = min(at + timedelta(minutes=30), DEMO_START)
            with self.target.lock:
                self._feed(self.estate.step(at))
            self.platform.watch.learn()

    def _staff(self) -> None:
        """A simulated on-call team: a weekly rotation and two escalation levels."""
        at = self.clock.now()
        with self.platform.db.session() as s:
            oncall.put_rotation(
                s,
                oncall.RotationIn(
                    name="ops",
                    services=["*"],
                    members=["ana", "ben", "cai"],
                    start=DEMO_START - timedelta(days=2),
                ),
                SIM_APPROVERS[0],
                at,
            )
        self._escalation_policy(ACK_TIMEOUT_S, LEVEL_DELAY_S)

    def _escalation_policy(self, ack_timeout_s: int, delay_s: int) -> None:
        """Two levels: the on-call person, then also the head of operations."""
        with self.platform.db.session() as s:
            oncall.put_escalation_policy(
                s,
                oncall.EscalationPolicyIn(
                    service="*",
                    ack_timeout_s=ack_timeout_s,
                    levels=[
                        oncall.LevelIn(targets=["oncall"], delay_s=delay_s),
                        oncall.LevelIn(targets=["oncall", "head-of-ops"]),
                    ],
                ),
                SIM_APPROVERS[0],
                self.clock.now(),
            )

    def _observe(self, kind: str, data: dict[str, Any]) -> None:
        """Forward the platform's notes in causal order: a person's approval is shown
        before the run it allowed."""
        at = self.clock.now()
        if kind == "decision" and data.get("approval"):
            self._approval_of[data["proposal"]] = data["approval"]
        approval = self._approval_of.get(data.get("proposal", -1))
        if kind == "execution.queued" and data.get("by") and approval is not None:
            note = {"approval": approval, "by": data["by"], "execution": data["execution"]}
            self.observer("human.approves", {**note, "at": at})
        self.observer(kind, {**data, "at": at})

    def _follow_people(self) -> None:
        """Live mode: show what real people did through the API or CLI that no platform
        note tells (a first of two approvals, a rejection)."""
        with self.platform.db.session() as s:
            rows = list(
                s.scalars(
                    select(AuditRecord)
                    .where(
                        AuditRecord.seq > self._people_seq,
                        AuditRecord.actor_kind == "human",
                        AuditRecord.action.in_(("approval.partial", "approval.rejected")),
                    )
                    .order_by(AuditRecord.seq)
                )
            )
            self._people_seq = max([self._people_seq, *(r.seq for r in rows)])
        for r in rows:
            approval = int(r.subject.split(":", 1)[1])
            if r.action == "approval.partial":
                note = {
                    "approval": approval,
                    "by": r.actor,
                    "execution": None,
                    "count": len(r.inputs.get("approvers", [])),
                    "required": r.inputs.get("required", 2),
                }
                self.observer("human.approves", {**note, "at": r.ts})
            else:
                self.observer(
                    "human.rejects",
                    {"approval": approval, "by": r.actor, "reason": r.rationale, "at": r.ts},
                )

    def give_people_real_time(self, speed: float) -> dict[str, int]:
        """Live mode runs simulated time `speed` times faster than a person's; stretch the
        timeouts people must meet (approval expiry, acknowledging an escalation) by the
        same factor, so they stay real minutes. Returns the simulated seconds chosen."""
        policy = self.platform.config.policy
        ttl = min(int(policy.approval_ttl_s * speed), 30 * 86400)
        self.platform.config.policy = policy.model_copy(update={"approval_ttl_s": ttl})
        ack = min(max(int(ACK_TIMEOUT_S * speed), 60), 86400)
        delay = min(int(LEVEL_DELAY_S * speed), 86400)
        self._escalation_policy(ack, delay)
        return {"approval_ttl_s": ttl, "ack_timeout_s": ack, "level_delay_s": delay}

    # --- one step of simulated time ----------------------------------------------------
    def step(self) -> None:
        until = self.clock.now() + timedelta(seconds=self.plan.step_s)
        with self.target.lock:
            signals = self.estate.step(until)
        self.clock.set(until)
        if self.plan.watch:
            self._feed(signals)
        if signals.alerts:
            self.platform.drain.ingest_alertmanager(signals.alerts, source="alertmanager")
        for draft in signals.tickets:
            self.platform.commands.file_ticket(draft.reporter, draft.subject, draft.body)
        self.platform.scheduler.tick()
        self.platform.backend.drain(timeout=30)

    def inject(self, scenario: str, service: str | None = None) -> str:
        with self.target.lock:
            fault_id = self.estate.inject(scenario, service)
        self.injected.append({"fault_id": fault_id, "scenario": scenario, "at": self.clock.now()})
        self.observer(
            "fault.injected", {"scenario": scenario, "service": service, "at": self.clock.now()}
        )
        return fault_id

    def simulated_humans(self, delay: timedelta) -> None:
        """Stand-ins for people in --once mode: approve requests after `delay`."""
        now = self.clock.now()
        with self.platform.db.session() as s:
            waiting = [
                (a.id, a.created_at, list(a.approvers), a.required_approvals)
                for a in pending_approvals(s)
            ]
        self._veto_once(now)
        for approval_id, created, approvers, required in waiting:
            if now < created + delay * (len(approvers) + 1):
                continue
            approver = next(a for a in SIM_APPROVERS if a.name not in approvers)
            execution = self.platform.commands.approve(
                approval_id, approver, "simulated on-call approval (demo)"
            )
            if execution is None:  # an allowed run is announced before it queues
                self.observer(
                    "human.approves",
                    {
                        "approval": approval_id,
                        "by": approver.name,
                        "at": now,
                        "count": len(approvers) + 1,
                        "required": required,
                        "execution": None,
                    },
                )
        self.platform.backend.drain(timeout=30)

    def _veto_once(self, now: datetime) -> None:
        """A person stops the first auto run of `plan.veto_runbook` in its veto window."""
        if self.plan.veto_runbook is None or self._vetoed:
            return
        with self.platform.db.session() as s:
            waiting = s.scalar(
                select(Execution.id).where(
                    Execution.runbook_id == self.plan.veto_runbook,
                    Execution.status == "queued",
                    Execution.not_before > now,
                )
            )
        if waiting is None:
            return
        self._vetoed = True
        who = SIM_APPROVERS[1]
        self.observer("human.vetoes", {"execution": waiting, "by": who.name, "at": now})
        self.platform.commands.override(
            waiting,
            "veto",
            "bad_timing",
            "a release is rolling out right now; try again later (demo)",
            who,
        )

    def run_for(
        self,
        minutes: float,
        humans: bool,
        stop: Callable[[], bool] = lambda: False,
        pace_s: float = 0.0,
    ) -> None:
        steps = int(minutes * 60 / self.plan.step_s)
        for _ in range(steps):
            if stop():
                return
            self.step()
            if humans:
                self.simulated_humans(timedelta(minutes=self.plan.approve_after_min))
            else:
                self._follow_people()
            if pace_s:
                time.sleep(pace_s)

    def scenario_list(self) -> list[str]:
        return self.plan.scenarios or list(self.estate.scenario_names())

    # --- modes -------------------------------------------------------------------------
    def run_once(self) -> dict[str, Any]:
        """Every scenario in turn, with people doing what people do: approving, vetoing a
        fix at a bad moment, pausing automation for maintenance, and leaving one approval
        for the next shift."""
        started = time.perf_counter()
        self.run_for(self.plan.baseline_min, humans=True)
        for scenario in self.scenario_list():
            maintenance = scenario == self.plan.pause_during
            if maintenance:
                self.platform.commands.pause(
                    "all", None, SIM_APPROVERS[0], "maintenance on the identity stack (demo)"
                )
            self.inject(scenario)
            if maintenance:
                self.run_for(self.plan.pause_min, humans=True)
                self.platform.commands.resume(
                    "all", None, SIM_APPROVERS[0], "maintenance done (demo)"
                )
                self.run_for(self.plan.spacing_min - self.plan.pause_min, humans=True)
            else:
                self.run_for(self.plan.spacing_min, humans=True)
        self.run_for(self.plan.tail_min, humans=True)
        if self.plan.late_fault:  # end of shift: nobody is left to approve this one
            scenario, service = self.plan.late_fault
            self.inject(scenario, service)
            self.run_for(self.plan.late_min, humans=False)
        with self.platform.db.session() as s:
            waiting = [a.id for a in pending_approvals(s)]
        self.observer("shift.ends", {"approvals": waiting, "at": self.clock.now()})
        summary = self.summary()
        summary["wall_seconds"] = round(time.perf_counter() - started, 2)
        return summary

    def run_live(self, stop: Callable[[], bool], speed: float) -> None:
        """Inject scenarios in turn until stopped, pacing simulated time at `speed` times
        real time. It opens with a fix that needs approval, so a newcomer sees Baton wait
        for them at once; no simulated person approves in live mode."""
        pace = self.plan.step_s / speed
        names = self.scenario_list()
        if "bad_deploy" in names:
            first = names.index("bad_deploy")
            names = names[first:] + names[:first]
        self.run_for(2, humans=False, stop=stop, pace_s=pace)
        i = 0
        while not stop():
            self.inject(names[i % len(names)])
            i += 1
            self.run_for(self.plan.spacing_min, humans=False, stop=stop, pace_s=pace)

    def close(self) -> None:
        """Stop the platform and mark where the demo left the audit chain."""
        self.platform.backend.drain(timeout=30)
        with self.platform.db.session() as s:
            s.get(Meta, DEMO_MARK).value = f"demo:{_audit_head(s)}"
        self.platform.close()

    # --- the score -----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        truth = self.estate.ground_truth()
        with self.platform.db.session() as s:

            def count(model: Any, *where: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

            incidents = list(s.scalars(select(Incident).order_by(Incident.id)))
            tiers = dict(
                s.execute(select(Decision.tier, func.count()).group_by(Decision.tier))
                .tuples()
                .all()
            )
            scored = _score(truth, incidents)
            verdict = audit.verify(s)
            return {
                "seed": self.plan.seed,
                "sim_hours": round((self.clock.now() - DEMO_START).total_seconds() / 3600, 2),
                "scenarios": len(self.injected),
                "scenarios_with_incident": scored["with_incident"],
                "origin_accuracy": scored["origin_accuracy"],
                "faults_fixed": sum(1 for t in truth if t.get("fixed_at")),
                "alerts": count(Event),
                **(
                    {
                        "anomaly_events": count(Event, Event.source == "baton.detect"),
                        **_detected_before_alert(truth, _first_seen(s)),
                    }
                    if self.plan.watch
                    else {}
                ),
                "incidents": len(incidents),
                "incidents_resolved": sum(1 for i in incidents if i.status == "resolved"),
                "tickets": count(Ticket),
                "tickets_linked": count(Ticket, Ticket.incident_id.is_not(None)),
                "proposals": count(Proposal),
                "decisions": sum(tiers.values()),
                "decisions_by_tier": tiers,
                "approvals_requested": count(Approval),
                "approvals_pending": count(Approval, Approval.status == "pending"),
                "executions": count(Execution),
                "executions_succeeded": count(Execution, Execution.status == "succeeded"),
                "executions_failed": count(
                    Execution, Execution.status.in_(("failed", "rolled_back"))
                ),
                "verified_fixes": count(Execution, Execution.verified.is_(True)),
                "overrides": count(Override),
                "pauses": count(AuditRecord, AuditRecord.action == "automation.paused"),
                "escalations": count(Escalation),
                "audit_records": verdict.records,
                "audit_ok": verdict.ok,
                **self._learned(s),
            }

    def _learned(self, s: Any) -> dict[str, Any]:
        """The demo's KPIs over the whole run, and its trust ledger per environment."""
        k = kpis(s, Scope(DEMO_START, self.clock.now() + timedelta(seconds=1)))
        figures = {
            "mtta_s": k["incidents"]["mtta_s"],
            "mttr_s": k["incidents"]["mttr_s"],
            "noise_reduction": k["noise_reduction"],
            "automation_success_rate": k["automation"]["success_rate"],
            "acceptance_rate": k["behaviour"]["acceptance_rate"],
            "override_reasons": k["behaviour"]["override_reasons"],
            "resolution": {n: k["incidents"]["resolution"][n] for n in RESOLUTIONS},
            "time_saved_min": k["automation"]["time_saved_min"],
            "escalation_rate": k["escalations"]["rate_per_incident"],
        }
        ledger = trust.ledger(s, self.platform.config.policy)
        keep = ("runbook", "scope", "proposals", "judged", "agreed", "wilson_lower")
        rows = [{f: r[f] for f in keep} for r in ledger if r["scope"].startswith("env:")]
        return {"kpis": figures, "trust": rows}


def _score(truth: list[dict[str, Any]], incidents: list[Incident]) -> dict[str, Any]:
    """Match each fault to the first incident that contains its root service after it began."""
    with_incident, correct = 0, 0
    for fault in truth:
        start, root = fault["started_at"], fault["root_service"]
        affected = set(fault.get("affected") or ()) | {root}
        match = next(
            (
                i
                for i in incidents
                if i.opened_at >= start - timedelta(minutes=1) and affected & set(i.services)
            ),
            None,
        )
        if match is None:
            continue
        with_incident += 1
        correct += match.origin_service == root
    return {
        "with_incident": with_incident,
        "origin_accuracy": round(correct / with_incident, 3) if with_incident else None,
    }


def _first_seen(s: Any) -> dict[tuple[str, str], list[datetime]]:
    """When each (kind, service) raised an event: detection's findings vs threshold alerts."""
    out: dict[tuple[str, str], list[datetime]] = {}
    rows = s.execute(
        select(Event.source, Event.service, Event.first_seen).order_by(Event.first_seen)
    )
    for source, service, at in rows:
        kind = "anomaly" if source == "baton.detect" else "alert"
        out.setdefault((kind, service or ""), []).append(at)
    return out


def _detected_before_alert(
    truth: list[dict[str, Any]], first_seen: dict[tuple[str, str], list[datetime]]
) -> dict[str, Any]:
    """Per fault, on its root service: did a detected anomaly come before the first
    threshold alert, and by how long?"""

    def first(kind: str, service: str, start: datetime) -> datetime | None:
        times = first_seen.get((kind, service), [])
        start = start.replace(tzinfo=None) if times and times[0].tzinfo is None else start
        return next((t for t in times if t >= start), None)

    leads = []
    for fault in truth:
        anomaly = first("anomaly", fault["root_service"], fault["started_at"])
        alert = first("alert", fault["root_service"], fault["started_at"])
        if anomaly is not None and (alert is None or anomaly < alert):
            leads.append((alert - anomaly).total_seconds() / 60 if alert else None)
    known = sorted(x for x in leads if x is not None)
    return {
        "faults_detected_before_alert": len(leads),
        "detection_lead_min_median": known[len(known) // 2] if known else None,
    }
