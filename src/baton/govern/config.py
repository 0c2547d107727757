"""The policy file (`policy.yaml` beside the runbooks): caps per environment and service,
per-runbook autonomy set by people, freeze windows, veto windows and approval timeouts.

It is edited through the API by leads and admins; every change is audited with its
author and a diff, and written atomically so a reader never sees half a file.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from baton.govern.policy import Tier
from baton.kernel.clock import UtcDatetime
from baton.kernel.errors import Invalid

TierName = Literal["observe", "recommend", "approve", "auto"]


class FreezeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: UtcDatetime
    end: UtcDatetime
    reason: str = "change freeze"
    services: list[str] = Field(default_factory=list, description="empty = every service")

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.end <= self.start:
            raise ValueError("a freeze window must end after it starts")
        return self

    def covers(self, service: str | None, at: datetime) -> bool:
        in_time = self.start <= at < self.end
        return in_time and (not self.services or service in self.services)


class ParamPolicy(BaseModel):
    """What a confined param may name, as people decided; replaces the runbook's lists."""

    model_config = ConfigDict(extra="forbid")
    roots: list[str] | None = Field(default=None, description="type path: allowed roots")
    allow: list[str] | None = Field(default=None, description="type unit/process: names")

    @model_validator(mode="after")
    def _absolute(self) -> ParamPolicy:
        for root in self.roots or []:
            if not root.startswith("/") or root == "/" or ".." in root.split("/"):
                raise ValueError(f"root {root!r} must be an absolute directory other than /")
        return self


class AutonomyChange(BaseModel):
    """One move of a runbook's autonomy on its measured record, kept in the policy so a
    reader sees when and why the tier it has was set."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["promote", "demote"]
    scope: str = Field(description="env:<name> or service:<name>")
    from_tier: TierName
    to_tier: TierName
    reason: str
    at: UtcDatetime
    by: str
    move: int | None = Field(default=None, description="the trust ledger's move id")


class TrustPolicy(BaseModel):
    """The bars the trust ledger applies: when a record earns a promotion proposal, and
    when a run of failures or overrides takes autonomy away at once."""

    model_config = ConfigDict(extra="forbid")
    min_sample: int = Field(default=30, ge=1, description="judged proposals before promoting")
    promote_at: float = Field(
        default=0.9, gt=0, le=1, description="Wilson lower bound of verified-and-agreed"
    )
    z: float = Field(default=1.96, gt=0, le=5, description="1.96 = 95% confidence")
    failure_streak: int = Field(default=3, ge=1, description="bad endings in a row: demote")
    override_window: int = Field(default=10, ge=1, description="judged proposals looked at")
    override_spike: float = Field(
        default=0.5, gt=0, le=1, description="share overridden in the window: demote"
    )


class RunbookPolicy(BaseModel):
    """What people decided for one automation; it wins over the runbook file's defaults."""

    model_config = ConfigDict(extra="forbid")
    autonomy: dict[str, TierName] = Field(
        default_factory=dict, description="ceiling per environment; 'default' for the rest"
    )
    services: dict[str, TierName] = Field(
        default_factory=dict,
        description="ceiling for one service, set on that service's own record; it wins "
        "over the environment's (caps, freezes and pauses still apply on top)",
    )
    recommend_below: float | None = Field(default=None, ge=0, le=1)
    observe_below: float | None = Field(default=None, ge=0, le=1)
    veto_window_s: int | None = Field(default=None, ge=0, le=86400)
    params: dict[str, ParamPolicy] = Field(
        default_factory=dict, description="roots / allow-lists of confined params"
    )
    changes: list[AutonomyChange] = Field(
        default_factory=list, description="promotions and demotions, oldest first"
    )


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environments: dict[str, TierName] = Field(default_factory=dict)
    services: dict[str, TierName] = Field(default_factory=dict)
    runbooks: dict[str, RunbookPolicy] = Field(default_factory=dict)
    freeze: list[FreezeWindow] = Field(default_factory=list)
    approval_ttl_s: int = Field(default=3600, ge=60, le=30 * 86400)
    veto_window_s: int = Field(default=60, ge=0, le=86400, description="before `auto` runs")
    retriage_after_veto_s: int = Field(default=600, ge=0, le=7 * 86400)
    max_runs_per_hour: int | None = Field(default=None, ge=1, description="all runbooks")
    answers: dict[str, TierName] = Field(
        default_factory=dict,
        description="ticket category -> tier of the desk's knowledge answers: `auto` sends "
        "them without a technician; any other (the default) waits for one",
    )
    trust: TrustPolicy = Field(default_factory=TrustPolicy)
    allow_interpreter: list[str] = Field(
        default_factory=list,
        description="runbook ids whose reviewed `interpreter` exceptions may stand; every "
        "other shell or interpreter-code step is refused when runbooks load",
    )

    def unknown_runbooks(self, known: set[str]) -> list[str]:
        """Runbook ids the policy names that the catalogue does not have (likely typos)."""
        return sorted(set(self.runbooks) - known)

    def cap(self, service: str | None, env: str) -> tuple[Tier, str]:
        """The tighter of the service's and the environment's caps."""
        env_cap = Tier.parse(self.environments.get(env, "auto"))
        svc_cap = Tier.parse(self.services.get(service or "", "auto"))
        if svc_cap < env_cap:
            return svc_cap, f"service {service}"
        return env_cap, f"environment {env}"

    def ceiling(
        self, runbook_id: str, env: str, file_ceiling: str, service: str | None = None
    ) -> tuple[Tier, str]:
        """The runbook's ceiling: the policy's for this service if people set one, else
        the policy's for the environment, else the file's."""
        chosen = self.runbooks.get(runbook_id)
        if chosen and service and service in chosen.services:
            return Tier.parse(chosen.services[service]), f"policy for service {service}"
        if chosen and chosen.autonomy:
            tier = chosen.autonomy.get(env, chosen.autonomy.get("default"))
            if tier is not None:
                return Tier.parse(tier), "policy"
        return Tier.parse(file_ceiling), "runbook"

    def gates(self, runbook_id: str, file_gates: tuple[float, float]) -> tuple[float, float]:
        chosen = self.runbooks.get(runbook_id)
        if chosen is None:
            return file_gates
        return (
            file_gates[0] if chosen.recommend_below is None else chosen.recommend_below,
            file_gates[1] if chosen.observe_below is None else chosen.observe_below,
        )

    def confinement(self, runbook_id: str) -> dict[str, dict[str, list[str]]]:
        """Per param, the roots / allow-list people set for this runbook."""
        chosen = self.runbooks.get(runbook_id)
        if chosen is None:
            return {}
        return {n: p.model_dump(exclude_none=True) for n, p in chosen.params.items()}

    def veto_window(self, runbook_id: str) -> int:
        chosen = self.runbooks.get(runbook_id)
        if chosen is not None and chosen.veto_window_s is not None:
            return chosen.veto_window_s
        return self.veto_window_s

    def frozen(self, service: str | None, at: datetime) -> FreezeWindow | None:
        return next((w for w in self.freeze if w.covers(service, at)), None)

    def with_autonomy(
        self,
        runbook_id: str,
        scope: str,
        change: AutonomyChange,
        env_services: Iterable[str] = (),
    ) -> dict[str, Any]:
        """This policy as data with the runbook's ceiling for `scope` (`env:<name>` or
        `service:<name>`) set to the change's tier and the change appended to its history
        (to apply through `apply_policy`). An environment's demotion also lowers the
        runbook's ceiling for any of `env_services` (that environment's services) set
        above the new tier, each with its own history entry, so no service keeps more
        autonomy than the record of its whole environment now allows."""
        kind, _, name = scope.partition(":")
        if kind not in ("env", "service") or not name:
            raise Invalid(f"scope {scope!r}: expected env:<name> or service:<name>")
        data = self.model_dump(mode="json", exclude_defaults=True)
        entry = data.setdefault("runbooks", {}).setdefault(runbook_id, {})
        entry.setdefault("autonomy" if kind == "env" else "services", {})[name] = change.to_tier
        history = entry.setdefault("changes", [])
        history.append(change.model_dump(mode="json"))
        if kind == "env" and change.kind == "demote":
            own = entry.get("services", {})
            for service in sorted(set(env_services) & set(own)):
                if Tier.parse(own[service]) > Tier.parse(change.to_tier):
                    lowered = change.model_copy(
                        update={
                            "scope": f"service:{service}",
                            "from_tier": own[service],
                            "reason": f"lowered with {scope}: {change.reason}",
                        }
                    )
                    own[service] = change.to_tier
                    history.append(lowered.model_dump(mode="json"))
        return data


Model = TypeVar("Model", bound=BaseModel)


def validate_model(model: type[Model], data: Any, where: str) -> Model:
    """Validate a config document; `Invalid` names the file and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise Invalid(f"{where}: {loc + ': ' if loc else ''}{err['msg']}", loc or None) from None


def read_config(path: Path, model: type[Model]) -> Model:
    """Read and validate a YAML config file (an empty file means the defaults)."""
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise Invalid(f"{path}: not valid YAML: {exc}") from None
    return validate_model(model, data, str(path))


def _validate(data: Any, where: str) -> PolicyConfig:
    return validate_model(PolicyConfig, data, where)


def load_policy(path: Path) -> PolicyConfig:
    """Read a policy file; a missing file means the defaults. ValueError names the field."""
    if not path.is_file():
        return PolicyConfig()
    return read_config(path, PolicyConfig)


def render(policy: PolicyConfig) -> str:
    return yaml.safe_dump(policy.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


def plan_policy(path: Path, data: Any) -> tuple[PolicyConfig, str]:
    """Validate `data`; return it and the diff against the file ('' when nothing changes,
    in which case the file, comments and all, is left alone)."""
    policy = _validate(data, "policy")
    if policy == load_policy(path):
        return policy, ""
    before = path.read_text() if path.is_file() else ""
    after = render(policy)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(True),
            after.splitlines(True),
            "policy.yaml (before)",
            "policy.yaml (after)",
        )
    )
    return policy, diff


def write_policy(path: Path, policy: PolicyConfig) -> None:
    """Replace the policy file atomically (see `write_atomic`)."""
    write_atomic(path, render(policy))


def write_atomic(path: Path, text: str) -> None:
    """Replace a config file atomically (readers see the old or the new file, never
    half), keeping its permissions, flushed to disk before it is renamed into place."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
