"""Every status Baton stores, one enum per kind of thing, and the groups of them that
rules ask about ("is it still live?", "did it end badly?").

They are `StrEnum`s: the database, the API and the CLI see the same lowercase words as
before, and a value compares equal to its word. Autonomy tiers are ordered, so `Tier`
is an `IntEnum` whose `label` is the word.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class EventStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    MERGED = "merged"


class ProposalStatus(StrEnum):
    NEW = "new"
    DECIDED = "decided"
    SUPERSEDED = "superseded"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    VETOED = "vetoed"


class StepStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class TicketStatus(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


class EscalationStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Tier(IntEnum):
    OBSERVE = 0  # shadow: decide and record only
    RECOMMEND = 1  # show to a human
    APPROVE = 2  # run after a human approves (two for high risk)
    AUTO = 3  # run, notify; a human may veto or roll back

    @classmethod
    def parse(cls, name: str) -> Tier:
        try:
            return cls[name.upper()]
        except KeyError:
            valid = ", ".join(t.label for t in cls)
            raise ValueError(f"unknown autonomy tier {name!r}; valid: {valid}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


TIER_LABELS = tuple(t.label for t in Tier)

# An incident someone may still have to act on.
LIVE_INCIDENT = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)
# An escalation someone has or must take: no second one about the same thing meanwhile.
LIVE_ESCALATION = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)
# Proposals that the current diagnosis may still replace.
OPEN_PROPOSAL = (ProposalStatus.NEW, ProposalStatus.DECIDED)

E = ExecutionStatus
# Executions that have ended and will not change by themselves.
FINAL_EXECUTION = (E.SUCCEEDED, E.FAILED, E.ROLLED_BACK, E.CANCELLED, E.INTERRUPTED, E.VETOED)
# Executions that hold a limit's slot: they will run, run or are being undone.
ACTIVE_EXECUTION = (E.QUEUED, E.RUNNING, E.VERIFYING, E.ROLLING_BACK)
# An incident with one of these is being fixed (or was): nothing new to propose for it.
FIXING = (E.QUEUED, E.RUNNING, E.VERIFYING, E.SUCCEEDED)
# Endings that count against a runbook: they open its breaker and page a person
# (unless a person caused them).
BAD_ENDING = (E.FAILED, E.ROLLED_BACK, E.INTERRUPTED)
# Endings a runbook's track record counts.
TRACKED_ENDING = (E.SUCCEEDED, E.FAILED, E.ROLLED_BACK)
del E
