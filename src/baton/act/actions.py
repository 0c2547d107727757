"""Step actions and verify checks, looked up by name from a runbook.

Actions reach the outside world only through `targets` wired by the runtime, so the
domain never knows whether it is acting on the sandbox estate or a real system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class SandboxTarget(Protocol):
    """What the `sandbox` action needs from a simulated estate."""

    def remediate(self, action: str, service: str, **params: Any) -> Any: ...

    def observe(self, service: str, metric: str) -> float: ...


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: str
    observed: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionContext:
    targets: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    def sandbox(self) -> SandboxTarget:
        target = self.targets.get("sandbox")
        if target is None:
            raise RuntimeError("no sandbox estate is attached to this Baton instance")
        return target


def _sandbox_action(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    remediation, service = args.get("remediation"), args.get("service")
    if not isinstance(remediation, str) or not isinstance(service, str):
        return Outcome(False, "sandbox action needs string 'remediation' and 'service'")
    extra = {k: v for k, v in args.items() if k not in ("remediation", "service")}
    if ctx.dry_run:
        return Outcome(True, f"would run {remediation} on {service} with {extra}")
    result = ctx.sandbox().remediate(remediation, service, **extra)
    changed = bool(getattr(result, "changed", True))
    detail = str(getattr(result, "detail", result))
    return Outcome(
        True,
        f"{remediation} on {service}: {detail}" + ("" if changed else " (no change)"),
        {"changed": changed},
    )


def _sandbox_metric(args: dict[str, Any], ctx: ActionContext) -> Outcome:
    service, metric = args.get("service"), args.get("metric")
    if not isinstance(service, str) or not isinstance(metric, str):
        return Outcome(False, "sandbox_metric needs string 'service' and 'metric'")
    value = float(ctx.sandbox().observe(service, metric))
    below, above = args.get("below"), args.get("above")
    ok = (below is None or value < float(below)) and (above is None or value > float(above))
    bound = f"< {below}" if below is not None else f"> {above}"
    return Outcome(
        ok,
        f"{metric} of {service} = {value:.3f} (want {bound})",
        {"service": service, "metric": metric, "value": value},
    )


ACTIONS: dict[str, Callable[[dict[str, Any], ActionContext], Outcome]] = {
    "sandbox": _sandbox_action,
}
CHECKS: dict[str, Callable[[dict[str, Any], ActionContext], Outcome]] = {
    "sandbox_metric": _sandbox_metric,
}


# Which attached target each action or check works through.
TARGET_OF: dict[str, str] = {"sandbox": "sandbox", "sandbox_metric": "sandbox"}


def missing_targets(doc: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    """Targets a runbook's steps and checks need that this instance does not have."""
    kinds = [
        item.get("action") or item.get("check")
        for section in ("steps", "verify", "rollback")
        for item in doc.get(section, [])
    ]
    return sorted({TARGET_OF[k] for k in kinds if k in TARGET_OF and TARGET_OF[k] not in targets})


def run_action(name: str, args: dict[str, Any], ctx: ActionContext) -> Outcome:
    """Run one action; an exception becomes a failed outcome with its message."""
    try:
        return ACTIONS[name](args, ctx)
    except Exception as exc:  # an action failing must not take the executor down
        return Outcome(False, f"{type(exc).__name__}: {exc}")


def run_check(name: str, args: dict[str, Any], ctx: ActionContext) -> Outcome:
    try:
        return CHECKS[name](args, ctx)
    except Exception as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
