"""A simulated organisation ("estate") that feeds the platform, with hidden ground truth.

Deterministic by seed, in simulated time: services with metrics, logs and alert rules,
users who file tickets, fault scenarios that cascade, and remediations that really change
state. Only scorers should read `Estate.ground_truth()`; nothing else it emits reveals it.
"""

from baton.sandbox.estate import Estate, Signals
from baton.sandbox.faults import SCENARIOS, GroundTruth, Scenario
from baton.sandbox.logs import LogLine
from baton.sandbox.metrics import MetricSample
from baton.sandbox.remediation import REMEDIATIONS, RemediationResult
from baton.sandbox.rules import ALERT_NAMES
from baton.sandbox.topology import ServiceSpec
from baton.sandbox.users import TicketDraft

__all__ = [
    "ALERT_NAMES",
    "REMEDIATIONS",
    "SCENARIOS",
    "Estate",
    "GroundTruth",
    "LogLine",
    "MetricSample",
    "RemediationResult",
    "Scenario",
    "ServiceSpec",
    "Signals",
    "TicketDraft",
]
