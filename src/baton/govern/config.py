"""The policy file (`policy.yaml` beside the runbooks): caps per environment and service,
freeze windows, and how long approvals may wait."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from baton.govern.policy import Tier

_TIERS = ("observe", "recommend", "approve", "auto")


class FreezeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime
    reason: str = "change freeze"
    services: list[str] = Field(default_factory=list, description="empty = every service")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A time written without a zone means UTC (YAML timestamps often omit it)."""
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    def covers(self, service: str | None, at: datetime) -> bool:
        in_time = self.start <= at < self.end
        return in_time and (not self.services or service in self.services)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environments: dict[str, str] = Field(default_factory=dict)
    services: dict[str, str] = Field(default_factory=dict)
    freeze: list[FreezeWindow] = Field(default_factory=list)
    approval_ttl_s: int = Field(default=3600, ge=60)

    @field_validator("environments", "services")
    @classmethod
    def _tiers(cls, caps: dict[str, str]) -> dict[str, str]:
        for name, tier in caps.items():
            if tier not in _TIERS:
                raise ValueError(f"{name}: {tier!r} is not a tier ({', '.join(_TIERS)})")
        return caps

    def cap(self, service: str | None, env: str) -> tuple[Tier, str]:
        """The tighter of the service's and the environment's caps."""
        env_cap = Tier.parse(self.environments.get(env, "auto"))
        svc_cap = Tier.parse(self.services.get(service or "", "auto"))
        return (
            (svc_cap, f"service {service}")
            if svc_cap < env_cap
            else (env_cap, f"environment {env}")
        )

    def frozen(self, service: str | None, at: datetime) -> FreezeWindow | None:
        return next((w for w in self.freeze if w.covers(service, at)), None)


def load_policy(path: Path) -> PolicyConfig:
    """Read a policy file; a missing file means the defaults. ValueError names the field."""
    if not path.is_file():
        return PolicyConfig()
    try:
        data: Any = yaml.safe_load(path.read_text()) or {}
        return PolicyConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{path}: {loc}: {err['msg']}") from None
