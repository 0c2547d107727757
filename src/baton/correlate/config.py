"""correlation.yaml: how long to hold new alerts, when an alert is flapping, which alerts
inhibit which, and when incidents resolve. Validated at load; errors name the field.

Example (see docs/correlation.md):

    window_s: 900                # an incident takes related alerts this long after its last
    resolve_with_alerts: true    # resolve an incident when all its alerts resolved
    transient_hold_s: 60         # default hold of a new alert before it may page
    services:
      reporting: {transient_hold_s: 300}
    flap: {window_s: 1800, min_firings: 3}
    impact_matchers:             # whose alerts can explain their dependents' alerts
      - ['severity=~"critical|error"']
      - ['alertname=~".*Latency.*"']
    inhibit_rules:
      - name: down-masks-symptoms
        source_matchers: ['alertname="ServiceDown"']
        target_matchers: ['alertname=~"HighErrorRate|HighLatency"']
        equal: [service]
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from baton.correlate.cooccurrence import LearnSettings
from baton.correlate.entities import EntitySettings
from baton.correlate.matchers import Matcher, parse_all


class ServiceTuning(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transient_hold_s: int = Field(ge=0, le=86400)


class FlapSettings(BaseModel):
    """An alert that fires `min_firings` times within `window_s` is flapping."""

    model_config = ConfigDict(extra="forbid")
    window_s: int = Field(default=1800, ge=60, le=86400)
    min_firings: int = Field(default=3, ge=2, le=1000)


class InhibitRule(BaseModel):
    """Alertmanager semantics: a firing source mutes targets that agree on `equal`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    source_matchers: tuple[str, ...] = Field(min_length=1)
    target_matchers: tuple[str, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _parses(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        parse_all(texts)
        return texts

    @property
    def sources(self) -> tuple[Matcher, ...]:
        return parse_all(self.source_matchers)

    @property
    def targets(self) -> tuple[Matcher, ...]:
        return parse_all(self.target_matchers)


class CorrelationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_s: int = Field(default=900, ge=30, le=86400)
    resolve_with_alerts: bool = True
    transient_hold_s: int = Field(default=0, ge=0, le=86400)
    services: dict[str, ServiceTuning] = Field(default_factory=dict)
    flap: FlapSettings = Field(default_factory=FlapSettings)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    # Alerts that show a service-level impact (errors, slowness, down), so dependents'
    # alerts can be blamed on them. A list of matcher groups: an alert counts when it
    # matches every matcher of any group. Empty: every alert counts.
    impact_matchers: list[list[str]] = Field(default_factory=list)
    # How an alert's labels name what it is about (correlate/entities.py).
    entities: EntitySettings = Field(default_factory=EntitySettings)
    # Low-severity alerts (warning, info) that show no impact wait as observations on
    # their entity instead of opening incidents; they join one that opens there.
    observe_below: str | None = "error"
    # Co-occurrence learned from people's merges and splits and from past incidents
    # (correlate/cooccurrence.py): half-life and weights of the evidence.
    learn: LearnSettings = Field(default_factory=LearnSettings)

    @field_validator("impact_matchers")
    @classmethod
    def _impact_parses(cls, groups: list[list[str]]) -> list[list[str]]:
        for group in groups:
            if not group:
                raise ValueError("an empty matcher group would match every alert")
            parse_all(group)
        return groups

    @field_validator("inhibit_rules")
    @classmethod
    def _unique_names(cls, rules: list[InhibitRule]) -> list[InhibitRule]:
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule name used twice: {', '.join(dupes)}")
        return rules

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_s)

    def hold_for(self, service: str | None) -> timedelta:
        tuning = self.services.get(service or "")
        return timedelta(seconds=tuning.transient_hold_s if tuning else self.transient_hold_s)


def parse_config(data: object, where: str = "correlation config") -> CorrelationConfig:
    """Validate a mapping; ValueError naming the bad field otherwise."""
    try:
        return CorrelationConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None


def load_config(path: Path) -> CorrelationConfig:
    """The file's settings, or the defaults when it does not exist."""
    if not path.exists():
        return CorrelationConfig()
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
