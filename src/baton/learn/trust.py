"""The trust ledger: each runbook's measured record per scope, and autonomy moved on it.

For every runbook x scope (an environment, and each service for reading), it counts the
AI's proposals, how often a person agreed with them (approved as proposed, let an `auto`
run stand, or in observe/recommend did the same thing themselves: see `shadow`), the
overrides by reason, and how runs ended. A promotion is *recommended* when enough
proposals were judged and the Wilson lower bound of verified-and-agreed outcomes clears
the policy's bar; only a lead can accept it. A failure streak or an override spike
*demotes* at once. Evidence is counted from the scope's last move on, so a new tier
earns its own record and one streak demotes once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from math import sqrt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.act.actions import host_actions
from baton.act.runbook import Runbook
from baton.govern.config import AutonomyChange, PolicyConfig, TrustPolicy
from baton.govern.flows import HOST_CEILING
from baton.govern.policy import Tier
from baton.kernel.audit import Actor, append
from baton.kernel.enums import BAD_ENDING, ExecutionStatus
from baton.kernel.errors import NotFound, Refused
from baton.learn.shadow import Outcome, judge, outcomes
from baton.store.models import Service as ServiceRow
from baton.store.models import TrustMove

TRUSTEE = Actor("baton.learn", "ai", "trust-ledger/1")
OPEN = "recommended"


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval: a rate's floor given its sample size,
    so 5 of 5 counts for less than 40 of 40."""
    if n == 0:
        return 0.0
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


@dataclass
class Record:
    """One runbook x scope's figures over the outcomes given."""

    runbook: str
    scope: str
    proposals: int = 0
    judged: int = 0
    agreed: int = 0
    verified_agreed: int = 0
    successes: int = 0
    verified_successes: int = 0
    failures: int = 0
    rollbacks: int = 0
    overrides: Counter[str] = field(default_factory=Counter)
    by_tier: Counter[str] = field(default_factory=Counter)

    def add(self, o: Outcome) -> None:
        self.proposals += 1
        self.by_tier[o.tier] += 1
        if o.agreed is not None:
            self.judged += 1
            self.agreed += o.agreed
            self.verified_agreed += bool(o.agreed and o.worked)
        if o.override:
            self.overrides[o.override] += 1
        status = o.status
        self.successes += status == ExecutionStatus.SUCCEEDED
        self.verified_successes += status == ExecutionStatus.SUCCEEDED and o.verified is True
        self.failures += status == ExecutionStatus.FAILED
        self.rollbacks += status == ExecutionStatus.ROLLED_BACK

    def to_dict(self, z: float) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "scope": self.scope,
            "proposals": self.proposals,
            "by_tier": dict(self.by_tier),
            "judged": self.judged,
            "agreed": self.agreed,
            "agreement_rate": round(self.agreed / self.judged, 3) if self.judged else None,
            "verified_agreed": self.verified_agreed,
            "wilson_lower": round(wilson_lower(self.verified_agreed, self.judged, z), 3),
            "overrides": dict(self.overrides),
            "verified_successes": self.verified_successes,
            "successes": self.successes,
            "failures": self.failures,
            "rollbacks": self.rollbacks,
        }


def scopes_of(o: Outcome) -> tuple[str, ...]:
    return (f"env:{o.env}",) + ((f"service:{o.service}",) if o.service else ())


def ledger(
    session: Session, policy: PolicyConfig, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Every runbook x scope's record (all AI proposals since `since`), busiest first."""
    records: dict[tuple[str, str], Record] = {}
    for o in judge(outcomes(session, since)):
        for scope in scopes_of(o):
            key = (o.runbook, scope)
            records.setdefault(key, Record(*key)).add(o)
    rows = [r.to_dict(policy.trust.z) for r in records.values()]
    return sorted(rows, key=lambda r: (-r["proposals"], r["runbook"], r["scope"]))


def standing_ceiling(
    runbook: Runbook, env: str, policy: PolicyConfig, service: str | None = None
) -> Tier:
    """The runbook's ceiling in `env` (for `service`, if given) as the policy decides it:
    what a move changes."""
    tier, source = policy.ceiling(runbook.id, env, runbook.ceiling(env), service)
    if source == "runbook" and host_actions(runbook.doc):
        tier = min(tier, HOST_CEILING)
    return tier


def _demotion(recent: list[Outcome], rules: TrustPolicy) -> str | None:
    """Why the latest outcomes demand less autonomy, if they do."""
    ended = [o for o in recent if o.status in (*BAD_ENDING, ExecutionStatus.SUCCEEDED)]
    streak = ended[-rules.failure_streak :]
    if len(streak) == rules.failure_streak and all(o.status in BAD_ENDING for o in streak):
        ids = ", ".join(str(o.execution) for o in streak)
        return f"{rules.failure_streak} failed runs in a row (executions {ids})"
    judged = [o for o in recent if o.agreed is not None][-rules.override_window :]
    if len(judged) == rules.override_window:
        against = sum(1 for o in judged if not o.agreed)
        if against / len(judged) >= rules.override_spike:
            return (
                f"{against} of the last {len(judged)} judged proposals were overridden or rejected"
            )
    return None


def _evidence(record: Record, rules: TrustPolicy, recent: list[Outcome]) -> dict[str, Any]:
    return {
        **record.to_dict(rules.z),
        "rules": rules.model_dump(),
        "proposal_ids": [o.proposal for o in recent][-200:],
    }


def _last_moves(session: Session) -> dict[tuple[str, str], TrustMove]:
    last: dict[tuple[str, str], TrustMove] = {}
    for move in session.scalars(select(TrustMove).order_by(TrustMove.id)):
        last[(move.runbook_id, move.scope)] = move
    return last


def _scopes(every: list[Outcome]) -> dict[tuple[str, str], list[Outcome]]:
    """Outcomes per runbook x environment, and per runbook x service where the runbook
    ran for more than one service in that environment (with one, the service's record
    is the environment's, and the environment's scope acts)."""
    grouped: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in every:
        grouped[(o.runbook, f"env:{o.env}")].append(o)
    for (rid, _), envs in list(grouped.items()):
        services = {o.service for o in envs if o.service}
        if len(services) > 1:
            for o in envs:
                if o.service:
                    grouped[(rid, f"service:{o.service}")].append(o)
    return grouped


@dataclass
class _Scope:
    """One runbook x scope as a review sees it: its outcomes since its last move."""

    runbook: Runbook
    scope: str
    env: str
    service: str | None
    recent: list[Outcome]
    tier: Tier
    waiting: bool  # a promotion awaits a lead's decision

    def record(self) -> Record:
        record = Record(self.runbook.id, self.scope)
        for o in self.recent:
            record.add(o)
        return record


def _review_scopes(
    session: Session, policy: PolicyConfig, catalogue: dict[str, Runbook]
) -> list[_Scope]:
    last = _last_moves(session)
    found = []
    for (rid, scope), every in sorted(_scopes(judge(outcomes(session))).items()):
        runbook, prior = catalogue.get(rid), last.get((rid, scope))
        if runbook is None:
            continue
        service = scope.removeprefix("service:") if scope.startswith("service:") else None
        env = every[-1].env if service else scope.removeprefix("env:")
        since = prior.decided_at or prior.created_at if prior is not None else None
        found.append(
            _Scope(
                runbook,
                scope,
                env,
                service,
                [o for o in every if since is None or o.created_at > since],
                standing_ceiling(runbook, env, policy, service),
                prior is not None and prior.status == OPEN,
            )
        )
    return found


def review(
    session: Session,
    policy: PolicyConfig,
    runbooks: Iterable[Runbook],
    at: datetime,
) -> list[TrustMove]:
    """Look at every runbook x scope since its last move: demote at once on a failure
    streak or an override spike (status `applied`, for the caller to write into the
    policy); recommend a promotion when the record clears the bar. Audited.

    Scopes nest: a service lies in its environment. A demotion takes the narrowest scope
    that explains it (a streak all on one service demotes that service, not its
    environment); a promotion the broadest the record supports (a service is recommended
    on its own only when its environment is not)."""
    rules = policy.trust
    scopes = _review_scopes(session, policy, {rb.id: rb for rb in runbooks})
    services = [sc for sc in scopes if sc.service and not sc.waiting]
    envs = [sc for sc in scopes if not sc.service]
    moves: list[TrustMove] = []

    def demote(sc: _Scope, looked_at: list[Outcome]) -> bool:
        why = _demotion(looked_at, rules)
        if why and sc.tier > Tier.OBSERVE:
            moves.append(_move(session, sc, "demote", "applied", why, rules, at))
        return bool(why)

    def promote(sc: _Scope) -> bool:
        record = sc.record()
        bound = wilson_lower(record.verified_agreed, record.judged, rules.z)
        if sc.tier < Tier.AUTO and record.judged >= rules.min_sample and bound >= rules.promote_at:
            why = (
                f"{record.verified_agreed} of {record.judged} judged proposals verified and "
                f"agreed: Wilson lower bound {bound:.3f} >= {rules.promote_at}"
            )
            moves.append(_move(session, sc, "promote", OPEN, why, rules, at))
            return True
        return False

    demoted = {(sc.runbook.id, sc.service) for sc in services if demote(sc, sc.recent)}
    raised = set()
    for sc in envs:
        if sc.waiting:
            raised.add((sc.runbook.id, sc.env))
            continue
        unexplained = [o for o in sc.recent if (sc.runbook.id, o.service) not in demoted]
        if not demote(sc, unexplained) and promote(sc):
            raised.add((sc.runbook.id, sc.env))
    for sc in services:
        key = (sc.runbook.id, sc.service)
        if key not in demoted and (sc.runbook.id, sc.env) not in raised:
            promote(sc)
    return moves


def _move(
    session: Session,
    sc: _Scope,
    kind: str,
    status: str,
    reason: str,
    rules: TrustPolicy,
    at: datetime,
) -> TrustMove:
    record, tier = sc.record(), sc.tier
    to = Tier(tier + 1 if kind == "promote" else tier - 1)
    move = TrustMove(
        runbook_id=record.runbook,
        scope=record.scope,
        kind=kind,
        status=status,
        from_tier=tier.label,
        to_tier=to.label,
        reason=reason,
        evidence=_evidence(record, rules, sc.recent),
        created_at=at,
    )
    session.add(move)
    session.flush()
    append(
        session,
        actor=TRUSTEE,
        action=f"trust.{kind}",
        subject=f"runbook:{record.runbook}",
        at=at,
        inputs={"move": move.id, "scope": record.scope, "evidence": move.evidence},
        decision=f"{status}: {tier.label} -> {to.label}",
        rationale=reason,
    )
    return move


def env_services(session: Session, policy: PolicyConfig, move: TrustMove) -> list[str]:
    """The services with their own ceiling for the move's runbook that lie in the move's
    environment (none for a service scope): an environment's demotion lowers them too
    (`PolicyConfig.with_autonomy`). A service the catalogue does not know is in `prod`,
    as for its outcomes."""
    chosen = policy.runbooks.get(move.runbook_id)
    if not move.scope.startswith("env:") or chosen is None or not chosen.services:
        return []
    envs = dict(session.execute(select(ServiceRow.name, ServiceRow.env)).tuples().all())
    env = move.scope.removeprefix("env:")
    return [name for name in chosen.services if envs.get(name, "prod") == env]


def change_of(move: TrustMove, by: str, at: datetime) -> AutonomyChange:
    """The policy history entry a move writes."""
    return AutonomyChange(
        kind=move.kind,  # type: ignore[arg-type]
        scope=move.scope,
        from_tier=move.from_tier,  # type: ignore[arg-type]
        to_tier=move.to_tier,  # type: ignore[arg-type]
        reason=move.reason,
        at=at,
        by=by,
        move=move.id,
    )


def open_move(session: Session, move_id: int) -> TrustMove:
    move = session.get(TrustMove, move_id)
    if move is None:
        raise NotFound(f"no trust move {move_id}")
    if move.status != OPEN:
        raise Refused(f"trust move {move_id} is {move.status}, not open for a decision")
    return move


def decide(
    session: Session, move_id: int, accept: bool, actor: Actor, reason: str, at: datetime
) -> TrustMove:
    """A lead accepts or declines a recommended promotion; audited with its evidence."""
    if actor.kind != "human":
        raise Refused("only a person decides a promotion")
    if not reason.strip():
        raise Refused("a promotion decision needs a reason")
    move = open_move(session, move_id)
    move.status = "accepted" if accept else "declined"
    move.decided_by, move.decided_at, move.decision_reason = actor.name, at, reason
    append(
        session,
        actor=actor,
        action=f"trust.{move.status}",
        subject=f"runbook:{move.runbook_id}",
        at=at,
        inputs={"move": move.id, "scope": move.scope, "evidence": move.evidence},
        decision=f"{move.status}: {move.from_tier} -> {move.to_tier}",
        rationale=reason,
    )
    return move


def moves(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    query = select(TrustMove).order_by(TrustMove.id.desc())
    if status:
        query = query.where(TrustMove.status == status)
    return [move_dict(m) for m in session.scalars(query)]


def move_dict(m: TrustMove) -> dict[str, Any]:
    return {
        "id": m.id,
        "runbook": m.runbook_id,
        "scope": m.scope,
        "kind": m.kind,
        "status": m.status,
        "from_tier": m.from_tier,
        "to_tier": m.to_tier,
        "reason": m.reason,
        "evidence": m.evidence,
        "created_at": m.created_at,
        "decided_by": m.decided_by,
        "decided_at": m.decided_at,
        "decision_reason": m.decision_reason,
    }
