"""What people do, each in one function: the API, every CLI path (`--local` included)
and the console call these, so the same checks and audit records apply whichever door
a person uses.

A command runs the domains' steps in one transaction and says what happened to the
observer; domain errors (`Refused`, `NotFound`, `Invalid`) pass through for the edge to
show.
"""

from __future__ import annotations

from typing import Any

import yaml

from baton.act import executions
from baton.act.limits import LimitReached
from baton.act.runbook import resolve_params
from baton.act.versions import get_version
from baton.correlate import feedback, incidents
from baton.correlate.topology import ServiceDef
from baton.govern import breaker, escalation, killswitch, overrides, rbac, signin
from baton.govern import flows as governance
from baton.govern.config import PolicyConfig
from baton.govern.config import render as render_policy
from baton.kernel.audit import Actor, append
from baton.kernel.clock import Clock
from baton.kernel.errors import Invalid, NotFound, Refused
from baton.learn import lessons, review, shadow, trust
from baton.runtime.config import LiveConfig
from baton.runtime.desk import Desk
from baton.runtime.dispatch import Dispatch
from baton.runtime.pipeline import Observer, Pipelines, StageContext
from baton.runtime.settings import known_secrets
from baton.store.db import Database
from baton.store.models import (
    ApiToken,
    Approval,
    Escalation,
    Execution,
    Incident,
    Proposal,
    Ticket,
)
from baton.triage import copilot, schedule
from baton.triage.llm import ChatClient, LLMConfig
from baton.triage.propose import requested


class Commands:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        config: LiveConfig,
        pipelines: Pipelines,
        dispatch: Dispatch,
        observer: Observer | None,
        desk: Desk,
    ) -> None:
        self.db, self.clock, self.config = db, clock, config
        self.pipelines, self.dispatch, self.observer = pipelines, dispatch, observer
        self.desk = desk  # the service desk's commands (runtime/desk.py)

    def note(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, data)

    # --- approvals and runs ------------------------------------------------------------
    def approve(
        self, approval_id: int, approver: Actor, reason: str, params: dict[str, Any] | None = None
    ) -> Execution | None:
        """Record an approval (optionally with changed params); queue the run once enough
        distinct people approved what will actually run."""
        at = self.clock.now()
        try:
            execution_id = self._approve(approval_id, approver, reason, params)
        except LimitReached as exc:  # the approval stays pending; say so in the ledger
            with self.db.session() as s:
                append(
                    s,
                    actor=approver,
                    action="execution.limited",
                    subject=f"approval:{approval_id}",
                    at=at,
                    decision="refused",
                    rationale=str(exc),
                )
            raise
        if execution_id is None:
            return None
        self.dispatch.start_due()
        with self.db.session() as s:
            return s.get(Execution, execution_id)

    def _approve(
        self, approval_id: int, approver: Actor, reason: str, params: dict[str, Any] | None
    ) -> int | None:
        at, policy = self.clock.now(), self.config.policy
        with self.db.session() as s:
            approval = s.get(Approval, approval_id)
            if approval is None:
                raise NotFound(f"no approval {approval_id}")
            blocked = governance.blocked_reason(s, approval_id, policy, at)
            if blocked:
                raise governance.ApprovalError(f"cannot approve now: {blocked}")
            if params:
                proposal = governance.proposal_of(s, approval)
                runbook = get_version(s, proposal.runbook_id, proposal.runbook_version)
                graph = self.config.graph(s)
                governance.change_params(
                    s,
                    approval_id,
                    params,
                    runbook,
                    env_of=lambda svc: graph.env(svc or ""),
                    policy=policy,
                    approver=approver,
                    at=at,
                    scope=self.config.scope(runbook, graph),
                )
            if not governance.approve(s, approval_id, approver, reason, at):
                return None
            execution = self.dispatch.queue(
                s,
                governance.proposal_of(s, approval),
                approval.decision_id,
                at,
                approver,
                params=governance.params_of(s, approval),
            )
            return execution.id if execution else None

    def reject(self, approval_id: int, approver: Actor, reason: str) -> None:
        with self.db.session() as s:
            governance.reject(s, approval_id, approver, reason, self.clock.now())

    def request_execution(
        self,
        runbook_id: str,
        params: dict[str, Any],
        requester: Actor,
        reason: str,
        incident_id: int | None = None,
    ) -> dict[str, Any]:
        """A person asks for a runbook to run. It is a proposal like any other: validated,
        decided by the same policy (so it may need someone else's approval), audited."""
        runbook = self.config.runbook(runbook_id)
        at = self.clock.now()
        with self.db.session() as s:
            scope = self.config.scope(runbook, self.config.graph(s))
            chosen = resolve_params(
                runbook, origin_service=None, labels={}, overrides=params, scope=scope
            )
            if incident_id is not None:
                incidents.get(s, incident_id)
            proposal = requested(s, runbook, chosen, requester, reason, incident_id, at)
            result, due_now = self._decide(s, proposal, at)
        if due_now:  # no veto window: straight to the backend, no wait for the next tick
            self.dispatch.submit([result["execution"]])
        return result

    def _decide(self, s: Any, proposal: Proposal, at: Any) -> tuple[dict[str, Any], bool]:
        """A proposal through the request pipeline (decide, then act as the tier says)."""
        [acted] = self.pipelines.request.run(StageContext(s, at, self.observer), [proposal])
        decision, approval = acted.decided.decision, acted.decided.approval
        execution = acted.execution
        due_now = execution is not None and execution.not_before is None
        return {
            "proposal": proposal.id,
            "tier": decision.tier,
            "reasons": decision.reasons,
            "approval": approval.id if approval else None,
            "execution": execution.id if execution else None,
        }, due_now

    # --- the copilot ---------------------------------------------------------------------
    def _copilot(self, s: Any, offline: bool = False) -> copilot.Context:
        graph = self.config.graph(s)
        cfg = self.config.settings
        client = None
        if cfg.llm_url and not offline:
            key = cfg.llm_api_key.get_secret_value() if cfg.llm_api_key else None
            client = ChatClient(LLMConfig(cfg.llm_url, cfg.llm_model, key, cfg.llm_timeout_s))
        return copilot.Context(
            self.config.catalogue,
            graph,
            self.clock.now(),
            lambda rb: self.config.scope(rb, graph),
            client,
            tuple(v.get_secret_value() for v in known_secrets(cfg)),
        )

    def investigate(self, incident_id: int, asker: Actor, ticket: bool = False) -> dict[str, Any]:
        """The copilot's report on an incident (or on the incident a ticket is linked to)."""
        with self.db.session() as s:
            if ticket:
                incident_id = copilot.incident_of_ticket(s, incident_id)
            ctx = self._copilot(s)
            try:
                return copilot.run_investigation(s, incident_id, ctx, asker)
            finally:
                if ctx.llm is not None:
                    ctx.llm.close()

    def ask(
        self, incident_id: int, question: str, asker: Actor, offline: bool = False
    ) -> dict[str, Any]:
        """A follow-up question about an incident, answered with cited evidence (by the
        fixed question kinds alone when `offline`, as chat does: it must answer in 3 s)."""
        with self.db.session() as s:
            ctx = self._copilot(s, offline=offline)
            try:
                return copilot.ask(s, incident_id, question, ctx, asker)
            finally:
                if ctx.llm is not None:
                    ctx.llm.close()

    def propose_fix(self, incident_id: int, requester: Actor, reason: str) -> dict[str, Any]:
        """Turn the copilot's drafted fix into a Proposal decided like any other: the
        policy sets its tier, so it may wait for someone else's approval. Offline, so what
        is proposed is the deterministic draft, never a model's words."""
        at = self.clock.now()
        with self.db.session() as s:
            ctx = self._copilot(s, offline=True)
            _, report = copilot.report_for(s, incident_id, ctx, offline_only=True)
            fix = report.fix
            if fix is None:
                raise Refused("the copilot has no supported fix for this incident")
            runbook = self.config.runbook(fix["runbook"])
            why = f"copilot fix: {fix['rationale']}; {reason}"
            proposal = requested(s, runbook, fix["params"], requester, why, incident_id, at)
            proposal.confidence = fix["confidence"]
            proposal.evidence = [
                *proposal.evidence,
                {"kind": "copilot", "evidence": fix["evidence"], "rationale": fix["rationale"]},
            ]
            result, due_now = self._decide(s, proposal, at)
        if due_now:
            self.dispatch.submit([result["execution"]])
        return result

    def override(
        self, execution_id: int, kind: str, category: str, reason: str, actor: Actor
    ) -> Execution:
        """Veto (before it starts), cancel (while it runs) or roll back (after) an execution."""
        overrides.validate(kind, category, reason)
        at = self.clock.now()
        with self.db.session() as s:
            if kind == "veto":
                execution = executions.veto(s, execution_id, at)
                seconds = self.config.policy.retriage_after_veto_s
                schedule.hold_off(s, execution.incident_id, at, seconds)
            elif kind == "cancel":
                execution = executions.request_cancel(s, execution_id)
            else:
                execution = executions.claim_rollback(s, execution_id, at)
            overrides.record(
                s,
                execution_id=execution_id,
                kind=kind,
                category=category,
                reason=reason,
                actor=actor,
                at=at,
            )
        self.note(
            "override",
            {
                "execution": execution_id,
                "kind": kind,
                "category": category,
                "by": actor.name,
                "reason": reason,
            },
        )
        if kind == "rollback":
            self.dispatch.roll_back(execution_id, f"rolled back by {actor.name}: {reason}")
        with self.db.session() as s:
            return s.get(Execution, execution.id)

    def close_breaker(self, runbook_id: str, actor: Actor, reason: str) -> None:
        at = self.clock.now()
        with self.db.session() as s:
            breaker.close(s, runbook_id, actor, reason, at)
            escalation.close_for(s, f"runbook:{runbook_id}", f"breaker closed by {actor.name}", at)

    # --- the kill switch -----------------------------------------------------------------
    def pause(self, scope: str, target: str | None, actor: Actor, reason: str) -> list[str]:
        with self.db.session() as s:
            killswitch.pause(s, scope, target, actor, reason, self.clock.now())
            active = killswitch.active(s)
        self.note("pause", {"scope": scope, "target": target, "by": actor.name, "reason": reason})
        return active

    def resume(self, scope: str, target: str | None, actor: Actor, reason: str) -> list[str]:
        """Lift a pause and release the open incidents it held back for triage."""
        with self.db.session() as s:
            killswitch.resume(s, scope, target, actor, reason, self.clock.now())
            active = killswitch.active(s)
            schedule.release(s, scope, target)
        self.note("resume", {"scope": scope, "target": target, "by": actor.name, "reason": reason})
        return active

    # --- incidents and escalations -------------------------------------------------------
    def acknowledge(self, incident_id: int, actor: Actor) -> Incident:
        """Someone has the incident: its escalation stops climbing."""
        at = self.clock.now()
        with self.db.session() as s:
            inc = incidents.acknowledge(s, incident_id, actor, at)
            escalation.close_for(s, f"incident:{inc.id}", f"acknowledged by {actor.name}", at)
            return inc

    def acknowledge_escalation(self, escalation_id: int, actor: Actor) -> Escalation:
        with self.db.session() as s:
            return escalation.acknowledge(s, escalation_id, actor, self.clock.now())

    def merge(self, incident_id: int, others: list[int], actor: Actor, reason: str) -> Incident:
        """Merge other incidents into this one (a person's correction, kept as feedback)."""
        with self.db.session() as s:
            graph = self.config.graph(s)
            return feedback.merge(s, incident_id, others, graph, actor, reason, self.clock.now())

    def split(self, incident_id: int, events: list[int], actor: Actor, reason: str) -> Incident:
        """Move alerts out of an incident into a new one; returns the new incident."""
        with self.db.session() as s:
            graph = self.config.graph(s)
            return feedback.split(s, incident_id, events, graph, actor, reason, self.clock.now())

    def set_origin(self, incident_id: int, service: str, actor: Actor, reason: str) -> Incident:
        """Name the probable origin yourself; the correlator keeps it from now on."""
        with self.db.session() as s:
            return feedback.set_origin(s, incident_id, service, actor, reason, self.clock.now())

    # --- configuration -------------------------------------------------------------------
    def apply_policy(self, data: Any, actor: Actor) -> tuple[PolicyConfig, str, list[str]]:
        return self.config.apply_policy(data, actor)

    def reload_runbooks(self, actor: Actor) -> Any:
        return self.config.reload(actor)

    def declare_services(self, defs: list[ServiceDef], actor: Actor) -> int:
        return self.config.declare_services(defs, actor)

    # --- the trust ledger ----------------------------------------------------------------
    def review_trust(self, actor: Actor = trust.TRUSTEE) -> list[dict[str, Any]]:
        """Compare shadow proposals, then move autonomy on the record: demotions are
        written into the policy at once, promotions wait for a lead."""
        at, policy = self.clock.now(), self.config.policy
        with self.db.session() as s:
            shadow.record_comparisons(s, at)
            moved = [
                (m, trust.move_dict(m)) for m in trust.review(s, policy, self.config.catalogue, at)
            ]
            demotions = [
                (
                    m.runbook_id,
                    m.scope,
                    trust.change_of(m, actor.name, at),
                    trust.env_services(s, policy, m),
                )
                for m, _ in moved
                if m.kind == "demote"
            ]
        for rid, scope, change, names in demotions:
            data = self.config.policy.with_autonomy(rid, scope, change, names)
            self.config.apply_policy(data, actor)
        for _, row in moved:
            self.note(f"trust.{row['kind']}", {k: row[k] for k in ("id", "runbook", "scope")})
        return [row for _, row in moved]

    def decide_promotion(
        self, move_id: int, accept: bool, actor: Actor, reason: str
    ) -> dict[str, Any]:
        """A lead accepts (the policy raises the runbook's tier, its history says why) or
        declines a recommended promotion; audited with the evidence either way."""
        at = self.clock.now()
        with self.db.session() as s:
            move = trust.open_move(s, move_id)
            change = trust.change_of(move, actor.name, at)
            rid, scope = move.runbook_id, move.scope
        if accept:  # the policy first: an accepted move always has its policy change
            self.config.apply_policy(self.config.policy.with_autonomy(rid, scope, change), actor)
        with self.db.session() as s:
            return trust.move_dict(trust.decide(s, move_id, accept, actor, reason, at))

    # --- post-incident reviews ----------------------------------------------------------
    def save_review(self, incident_id: int, body: review.ReviewIn, actor: Actor) -> dict[str, Any]:
        """Write an incident's review. A lesson's proposed runbook or policy change is
        checked now and kept as a diff against the file as it is; only `apply_lesson`,
        by a lead, changes the file."""
        with self.db.session() as s:
            try:
                before = review.get_review(s, incident_id).lessons
            except NotFound:
                before = []
        changes = {}
        for i, lesson in enumerate(body.lessons):
            kept = before[i].get("change") if i < len(before) else None
            if kept and before[i].get("text") == lesson.text and not _proposes(lesson):
                changes[i] = kept  # re-saved without its change: the stored one stands
            elif _proposes(lesson):
                changes[i] = self._lesson_change(i, lesson, actor)
        with self.db.session() as s:
            row = review.save_review(s, incident_id, body, actor, self.clock.now(), changes)
            return review.review_dict(s, row)

    def _lesson_change(self, index: int, lesson: review.Lesson, actor: Actor) -> dict[str, Any]:
        path, before = self.config.document(lesson.runbook)
        if lesson.policy is not None:
            after = render_policy(self.config.plan_policy(lesson.policy)[0])
        elif lesson.proposed is not None:
            after = lesson.proposed
        else:
            after = lessons.apply_diff(before, lesson.diff or "", path.name)
        after = self.config.normalised(lesson.runbook, after)
        diff = lessons.make_diff(before, after, path.name)
        if not diff:
            raise Invalid(f"lesson {index}: {path.name} already says that; nothing to change")
        return {
            "target": "runbook" if lesson.runbook else "policy",
            "runbook": lesson.runbook,
            "file": path.name,
            "diff": diff,
            "proposed_by": actor.name,
        }

    def lesson_change(self, incident_id: int, lesson: int) -> dict[str, Any]:
        """The change a lesson proposes, as its stored diff, and whether that diff still
        applies to the file as it is now (and if not, why)."""
        with self.db.session() as s:
            change = review.lesson_change(review.get_review(s, incident_id), lesson)
        _, now = self.config.document(change["runbook"])
        try:
            lessons.apply_diff(now, change["diff"], change["file"])
            change |= {"applies": True, "stale": None}
        except lessons.StaleDiff as exc:
            change |= {"applies": False, "stale": str(exc)}
        return change

    def apply_lesson(self, incident_id: int, lesson: int, actor: Actor) -> dict[str, Any]:
        """A lead applies the diff a lesson proposed to the file as it is now: the policy
        through `apply_policy` (audited with its diff), a runbook by writing its file and
        reloading the catalogue; the lesson records who applied it. A diff that no longer
        applies is refused (`StaleDiff`), as is a second application."""
        if actor.kind != "human":
            raise Refused("only a person applies a lesson's change")
        with self.db.session() as s:
            change = review.lesson_change(review.get_review(s, incident_id), lesson)
        if change.get("applied_by"):
            raise Refused(
                f"lesson {lesson} was applied by {change['applied_by']} at {change['applied_at']}"
            )
        _, now = self.config.document(change["runbook"])
        after = lessons.apply_diff(now, change["diff"], change["file"])
        warnings: list[str] = []
        if change["runbook"] is None:
            try:
                data = yaml.safe_load(after) or {}
            except yaml.YAMLError as exc:
                raise Invalid(f"policy: not valid YAML after the diff: {exc}") from None
            _, diff, warnings = self.config.apply_policy(data, actor)
        else:
            self.config.write_runbook(change["runbook"], after, actor)
            diff = lessons.make_diff(now, after, change["file"])
        with self.db.session() as s:
            row = review.get_review(s, incident_id)
            done = review.mark_applied(s, row, lesson, actor, self.clock.now())
        return {**done, "applied_diff": diff, "warnings": warnings}

    # --- tokens ----------------------------------------------------------------------------
    def create_token(
        self,
        name: str,
        role: str,
        actor: Actor,
        why: str | None = None,
        issued_by: str | None = None,
    ) -> tuple[ApiToken, str]:
        """A token for `name`; the secret is returned once, only its hash is kept.

        `issued_by` is the person minting it when that is someone other than `name` (an
        admin through the API); the token then speaks for both, so it never counts as a
        second person for four-eyes."""
        at = self.clock.now()
        with self.db.session() as s:
            token, secret = rbac.create_token(s, name=name, role=role, at=at, issued_by=issued_by)
            if token.issued_by and why is None:
                why = f"{token.issued_by} issued a token for {name}"
            append(
                s,
                actor=actor,
                action="token.created",
                subject=f"token:{token.id}",
                at=at,
                inputs={"name": name, "role": role, "issued_by": token.issued_by},
                decision="created",
                rationale=why,
            )
            return token, secret

    def revoke_token(self, token_id: int, actor: Actor, why: str | None = None) -> ApiToken:
        at = self.clock.now()
        with self.db.session() as s:
            token = rbac.revoke_token(s, token_id, at)
            append(
                s,
                actor=actor,
                action="token.revoked",
                subject=f"token:{token.id}",
                at=at,
                decision="revoked",
                rationale=why,
            )
            return token

    # --- console sign-in -------------------------------------------------------------------
    def set_password(self, name: str, role: str | None, password: str, actor: Actor) -> None:
        """Give a person a console password (made at the host or by an admin); audited,
        the password itself never is."""
        at = self.clock.now()
        with self.db.session() as s:
            user = signin.set_password(s, name, role, password, at)
            append(
                s,
                actor=actor,
                action="password.set",
                subject=f"user:{user.id}",
                at=at,
                inputs={"name": name, "role": user.role},
                decision="set",
            )

    def sign_in(self, name: str, password: str) -> tuple[str, str] | None:
        """A browser session for a right name and password: (cookie secret, CSRF token).
        Refusals are audited too, so guessing shows in the ledger."""
        at = self.clock.now()
        with self.db.session() as s:
            user = signin.check_password(s, name, password)
            opened = signin.open_session(s, user, at) if user is not None else None
            append(
                s,
                actor=Actor(name[:128], "human"),
                action="session.opened" if opened else "session.refused",
                subject=f"user:{user.id}" if user else "console",
                at=at,
                decision="signed in" if opened else "refused",
                rationale=None if opened else "unknown name or wrong password",
            )
            return (opened[0], opened[1].csrf) if opened else None

    def sign_out(self, secret: str, actor: Actor) -> None:
        at = self.clock.now()
        with self.db.session() as s:
            row = signin.close_session(s, secret, at)
            if row is not None:
                append(
                    s,
                    actor=actor,
                    action="session.closed",
                    subject=f"user:{row.user_id}",
                    at=at,
                    decision="signed out",
                )

    # --- the service desk ----------------------------------------------------------------
    def file_ticket(self, reporter: str, subject: str, body: str) -> Ticket:
        return self.desk.file(reporter, subject, body)

    def correct_triage(
        self,
        model: str,
        subject: str,
        fields: dict[str, str],
        value: str,
        actor: Actor,
        prediction_id: int | None = None,
    ) -> dict[str, Any]:
        """A technician's correction of a triage model, learned at the next retrain."""
        return self.desk.correct(model, subject, fields, value, actor, prediction_id)


def _proposes(lesson: review.Lesson) -> bool:
    return lesson.policy is not None or lesson.proposed is not None or lesson.diff is not None
