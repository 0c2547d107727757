"""Live configuration: what people change while Baton runs — the runbook catalogue, the
autonomy policy, notification routing, correlation settings and the service graph.

One component loads it, reloads it, follows the files on disk (another replica or an
editor may write them) and applies a person's change with its audit record, so every
reader sees the same configuration and every change has a record.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from baton.act.confine import Scope
from baton.act.runbook import Catalogue, Runbook, RunbookError, load_dir, parse
from baton.act.versions import sync_catalogue
from baton.correlate import topology
from baton.correlate.config import load_config
from baton.govern.config import (
    PolicyConfig,
    load_policy,
    plan_policy,
    render,
    write_atomic,
    write_policy,
)
from baton.govern.routes import Routing, load_routing
from baton.kernel.audit import Actor, append
from baton.kernel.clock import Clock
from baton.kernel.errors import Invalid, NotFound
from baton.runtime.pipeline import INTAKE
from baton.runtime.settings import Settings
from baton.servicedesk import fulfil
from baton.store.db import Database

log = logging.getLogger("baton.config")
GRAPH_TTL_S = 30.0


class LiveConfig:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.catalogue = Catalogue()
        self.policy = PolicyConfig()
        self.routing: Routing | None = None  # notifications.yaml; None: no notifications
        self.correlation = load_config(settings.correlation_path)
        self._graph: tuple[float, topology.Topology] | None = None
        self._policy_stamp: float | None = None

    @property
    def _policy_path(self) -> Path:
        return self.settings.runbooks_path / "policy.yaml"

    def reload(self, actor: Actor = INTAKE) -> Catalogue:
        """Load runbooks, policy and routing from disk; audit what changed and who asked."""
        path = self.settings.runbooks_path
        policy = load_policy(self._policy_path)
        catalogue = load_dir(path, policy.allow_interpreter)
        self.routing = load_routing(path / "notifications.yaml")
        before = {rb.id: rb.version for rb in self.catalogue}
        after = {rb.id: rb.version for rb in catalogue}
        changed = sorted(k for k in after if before.get(k) != after[k])
        removed = sorted(set(before) - set(after))
        self.catalogue, self.policy = catalogue, policy
        self._policy_stamp = self._policy_mtime()
        with self.db.session() as s:
            sync_catalogue(s, catalogue, self.clock.now())
            append(
                s,
                actor=actor,
                action="runbooks.loaded",
                subject="runbooks",
                at=self.clock.now(),
                inputs={
                    "path": str(path),
                    "versions": after,
                    "policy": policy.model_dump(mode="json"),
                    "errors": [str(e) for e in catalogue.errors],
                },
                decision=f"{len(after)} loaded, {len(catalogue.errors)} rejected",
                rationale=f"new or changed: {', '.join(changed) or 'none'}; "
                f"removed: {', '.join(removed) or 'none'}",
            )
        return catalogue

    def scope(self, runbook: Runbook, graph: topology.Topology) -> Scope:
        """What a runbook's confined params may name: the policy's roots and allow-lists
        (else the runbook's) and the catalogue's hosts."""
        return Scope.of(runbook.params, self.policy.confinement(runbook.id), graph.hosts)

    def runbook(self, runbook_id: str) -> Runbook:
        """The loaded runbook `runbook_id`, or `NotFound`."""
        runbook = self.catalogue.get(runbook_id)
        if runbook is None:
            raise NotFound(f"no runbook {runbook_id!r}")
        return runbook

    def _policy_mtime(self) -> float | None:
        path = self._policy_path
        return path.stat().st_mtime if path.exists() else None

    def follow(self) -> None:
        """Pick up a policy another replica (or an editor) wrote; a bad file keeps the old
        policy and is logged rather than stopping the heartbeat."""
        stamp = self._policy_mtime()
        if stamp == self._policy_stamp:
            return
        self._policy_stamp = stamp
        try:
            self.policy = load_policy(self._policy_path)
        except ValueError as exc:
            log.error("policy file not applied", extra={"problem": str(exc)})

    def plan_policy(self, data: Any) -> tuple[PolicyConfig, str]:
        """Validate a would-be policy and diff it against the file, changing nothing."""
        return plan_policy(self._policy_path, data)

    def document(self, runbook_id: str | None) -> tuple[Path, str]:
        """The file a change is made to and its text now: the runbook's, or the policy's
        (`runbook_id` None; '' while the policy file does not exist)."""
        if runbook_id is None:
            path = self._policy_path
        else:
            runbook = self.catalogue.get(runbook_id)
            if runbook is None or not runbook.path:
                raise NotFound(f"no runbook {runbook_id} loaded from a file")
            path = Path(runbook.path)
        return path, path.read_text() if path.is_file() else ""

    def normalised(self, runbook_id: str | None, text: str) -> str:
        """`text` checked as the file it would replace: a valid runbook keeping its id, or
        a valid policy (rendered as Baton writes it). `Invalid` names the problem."""
        if runbook_id is None:
            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise Invalid(f"policy: not valid YAML: {exc}") from None
            return render(self.plan_policy(data)[0])
        path, _ = self.document(runbook_id)
        try:
            runbook = parse(text, str(path), self.policy.allow_interpreter)
        except RunbookError as exc:
            raise Invalid(str(exc)) from None
        if runbook.id != runbook_id:
            raise Invalid(f"{path.name}: the change renames runbook {runbook_id} to {runbook.id}")
        return text if text.endswith("\n") else text + "\n"

    def write_runbook(self, runbook_id: str, text: str, actor: Actor) -> Catalogue:
        """Replace a runbook's file with a checked text and reload the catalogue (the
        reload's audit record names the new version and who asked)."""
        path, _ = self.document(runbook_id)
        write_atomic(path, self.normalised(runbook_id, text))
        return self.reload(actor)

    def apply_policy(self, data: Any, actor: Actor) -> tuple[PolicyConfig, str, list[str]]:
        """Validate and write policy.yaml, audit author and diff, apply it at once.

        The audit record is written first and committed only once the file is in place,
        so there is never a change without its record. Returns (policy, diff, warnings).
        """
        policy, diff = plan_policy(self._policy_path, data)
        known = {rb.id for rb in self.catalogue} | set(fulfil.RUNBOOK_IDS.values())
        unknown = policy.unknown_runbooks(known)
        warnings = [f"runbooks.{rid}: no such runbook in the catalogue" for rid in unknown]
        if not diff:
            return policy, diff, warnings
        with self.db.session() as s:
            append(
                s,
                actor=actor,
                action="policy.changed",
                subject="policy",
                at=self.clock.now(),
                inputs={"diff": diff, "warnings": warnings},
                decision="applied",
                rationale=f"{diff.count(chr(10))} diff line(s)",
            )
            write_policy(self._policy_path, policy)
        self.policy, self._policy_stamp = policy, self._policy_mtime()
        return policy, diff, warnings

    def declare_services(self, defs: list[topology.ServiceDef], actor: Actor = INTAKE) -> int:
        """Declare services (upsert) and audit who did, in one transaction."""
        with self.db.session() as s:
            n = topology.upsert_services(s, defs)
            append(
                s,
                actor=actor,
                action="services.declared",
                subject="services",
                at=self.clock.now(),
                inputs={"services": [d.name for d in defs]},
                decision="upserted",
            )
        self._graph = None
        return n

    def graph(self, session: Session) -> topology.Topology:
        """The service graph, cached for a short while (other replicas may change it)."""
        now = time.monotonic()
        if self._graph is None or now - self._graph[0] > GRAPH_TTL_S:
            self._graph = (now, topology.load_topology(session))
        return self._graph[1]
