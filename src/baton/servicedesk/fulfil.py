"""Fulfilment runbooks of the catalogue items that change more than a password: a disk
quota increase and a software entitlement, both carried out on the real directory.

Each is a runbook in the sense the rest of Baton uses: named steps that act, a check
that reads the result back from the directory (not from what we meant to write), and a
rollback that restores what was there when the check fails or a step raises. It runs
only once the autonomy policy let it — the item's ceiling, the kill switch on
`selfservice.<item>` — or a person approved it; every step lands in the transcript the
ticket is closed with, so a technician sees exactly what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from baton.kernel.errors import Invalid
from baton.servicedesk.directory import Account, Directory, DirectoryError

MAX_INCREASE_GB = 100  # one request's increase; more is a project, not a catalogue item
MAX_QUOTA_GB = 2000  # a quota the runbook refuses to go past


@dataclass
class Run:
    """What a runbook did, step by step, and how it ended."""

    runbook: str
    steps: list[str] = field(default_factory=list)
    ok: bool = False
    outcome: str = ""

    def step(self, text: str) -> None:
        self.steps.append(text)

    def transcript(self) -> str:
        lines = "; ".join(f"{i}. {s}" for i, s in enumerate(self.steps, 1))
        return f"runbook {self.runbook}: {lines}" if lines else f"runbook {self.runbook}"


def increase_gb(params: dict[str, Any]) -> int:
    """The requested increase, checked before any code is sent: a whole number of GB."""
    raw = params.get("gb")
    try:
        gb = int(str(raw).strip())
    except ValueError:
        raise Invalid(f"params.gb: a whole number of GB, 1-{MAX_INCREASE_GB}", "gb") from None
    if not 1 <= gb <= MAX_INCREASE_GB or str(raw).strip() != str(gb):
        raise Invalid(f"params.gb: a whole number of GB, 1-{MAX_INCREASE_GB}", "gb")
    return gb


def disk_quota(directory: Directory, account: Account, params: dict[str, Any]) -> Run:
    """Raise the account's quota attribute by `params.gb`, read it back, undo on mismatch."""
    run = Run("selfservice-disk-quota")
    gb = increase_gb(params)
    before = directory.quota(account)
    run.step(f"read {directory.quota_attr} of {account.dn}: {_gb(before)}")
    after = (before or 0) + gb
    if after > MAX_QUOTA_GB:
        run.outcome = f"refused: {after} GB would pass the catalogue's {MAX_QUOTA_GB} GB limit"
        run.step(run.outcome)
        return run

    def undo() -> None:
        directory.set_quota(account, before)
        run.step(f"rollback: {directory.quota_attr} set back to {_gb(before)}")

    def act() -> bool:
        directory.set_quota(account, after)
        run.step(f"set {directory.quota_attr} to {after} GB (+{gb})")
        seen = directory.quota(account)
        run.step(f"verify: the directory now holds {_gb(seen)}")
        return seen == after

    return _finish(run, act, undo, f"disk quota {_gb(before)} -> {after} GB")


def software_request(directory: Directory, account: Account, params: dict[str, Any]) -> Run:
    """Add the account to the entitlement group of the named software, check membership."""
    run = Run("selfservice-software")
    name = str(params.get("software", "")).strip()
    found = directory.software(name)
    if found is None:
        run.outcome = f"not in the software catalogue: no entitlement group {name!r}"
        run.step(f"look up the entitlement group of {name!r}: none")
        return run
    group_dn = found[0]
    was_member = account.dn.lower() in {m.lower() for m in found[2]}
    run.step(f"look up the entitlement group of {name!r}: {group_dn}")
    if was_member:
        run.ok, run.outcome = True, f"already entitled to {name} ({group_dn})"
        run.step("already a member: nothing to change")
        return run

    def undo() -> None:
        removed = directory.remove_member(group_dn, account)
        run.step("rollback: membership removed" if removed else "rollback: was not a member")

    def act() -> bool:
        directory.add_member(group_dn, account)
        run.step(f"add {account.dn} to {group_dn}")
        now = directory.group(name, directory.software_base)
        member = now is not None and account.dn.lower() in {m.lower() for m in now[2]}
        run.step(f"verify: member of {group_dn}: {'yes' if member else 'no'}")
        return member

    return _finish(run, act, undo, f"entitled to {name} ({group_dn})")


def _finish(run: Run, act: Callable[[], bool], undo: Callable[[], None], success: str) -> Run:
    """Run the acting steps; a failed check or a refusal rolls back what they changed."""
    try:
        verified = act()
    except DirectoryError as exc:
        run.step(f"failed: {exc}")
        verified = False
    if verified:
        run.ok, run.outcome = True, success
        return run
    try:
        undo()
    except DirectoryError as exc:
        run.step(f"rollback failed: {exc}")
    run.outcome = "failed and rolled back; a technician takes it from here"
    return run


def _gb(value: int | None) -> str:
    return "not set" if value is None else f"{value} GB"


RUNBOOKS: dict[str, Callable[[Directory, Account, dict[str, Any]], Run]] = {
    "disk_quota": disk_quota,
    "software_request": software_request,
}
# the ids `runbooks:` in policy.yaml uses to raise or lower an item's ceiling
RUNBOOK_IDS = {"disk_quota": "selfservice-disk-quota", "software_request": "selfservice-software"}
