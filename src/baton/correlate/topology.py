"""The service catalogue and its dependency graph (edges point upstream)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.errors import Invalid
from baton.store.models import Service, ServiceDependency


@dataclass(frozen=True)
class ServiceDef:
    """A service as declared by a catalogue, the sandbox or the API."""

    name: str
    kind: str = "service"
    host: str | None = None
    owner: str | None = None
    env: str = "prod"
    criticality: int = 2
    user_facing: bool = False
    depends_on: tuple[str, ...] = ()


@dataclass
class Topology:
    """An in-memory view of the graph for fast upstream/downstream questions."""

    services: dict[str, ServiceDef] = field(default_factory=dict)

    @cached_property
    def _upstream(self) -> dict[str, frozenset[str]]:
        memo: dict[str, frozenset[str]] = {}

        def visit(name: str, trail: frozenset[str]) -> frozenset[str]:
            if name in memo:
                return memo[name]
            spec = self.services.get(name)
            found: set[str] = set()
            for dep in spec.depends_on if spec else ():
                if dep in trail:
                    continue  # tolerate a cycle rather than recurse forever
                found.add(dep)
                found |= visit(dep, trail | {dep})
            memo[name] = frozenset(found)
            return memo[name]

        return {name: visit(name, frozenset({name})) for name in self.services}

    @property
    def hosts(self) -> frozenset[str]:
        """Every host a catalogued service runs on (what a `host` param may name)."""
        return frozenset(d.host for d in self.services.values() if d.host)

    def upstream(self, name: str) -> frozenset[str]:
        """Everything `name` needs, directly or transitively."""
        return self._upstream.get(name, frozenset())

    def hops(self, a: str, b: str) -> int | None:
        """Dependency edges from `a` up to `b` (0 when equal), None when `b` is not upstream."""
        if a == b:
            return 0
        if b not in self.upstream(a):
            return None
        frontier, seen, depth = {a}, {a}, 0
        while frontier:
            depth += 1
            frontier = {
                dep
                for name in frontier
                for dep in (self.services[name].depends_on if name in self.services else ())
                if dep not in seen
            }
            if b in frontier:
                return depth
            seen |= frontier
        return None  # pragma: no cover - upstream() said b is reachable

    @cached_property
    def _dependents(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for spec in self.services.values():
            for dep in spec.depends_on:
                out.setdefault(dep, set()).add(spec.name)
        return {k: frozenset(v) for k, v in out.items()}

    def dependents(self, name: str) -> frozenset[str]:
        """Services that need `name` directly."""
        return self._dependents.get(name, frozenset())

    def consumers(self, name: str) -> frozenset[str]:
        """Workers that read from `name` when it is a queue: when they stop, it backs up."""
        if self.kind(name) != "queue":
            return frozenset()
        return frozenset(
            s.name for s in self.services.values() if s.kind == "worker" and name in s.depends_on
        )

    def known(self, name: str) -> bool:
        return name in self.services

    def related(self, a: str, b: str) -> bool:
        """True when one of the two depends (transitively) on the other."""
        return a == b or b in self.upstream(a) or a in self.upstream(b)

    def path_note(self, a: str, b: str) -> str:
        if a == b:
            return f"same service {a}"
        if b in self.upstream(a):
            return f"{a} depends on {b}"
        return f"{b} depends on {a}"

    def kind(self, name: str) -> str | None:
        spec = self.services.get(name)
        return spec.kind if spec else None

    def owner(self, name: str) -> str | None:
        spec = self.services.get(name)
        return spec.owner if spec else None

    def env(self, name: str) -> str:
        spec = self.services.get(name)
        return spec.env if spec else "prod"


def validate_defs(defs: Iterable[ServiceDef]) -> list[ServiceDef]:
    """Check names are unique and every dependency is declared; `Invalid` otherwise."""
    items = list(defs)
    names = [d.name for d in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise Invalid(f"service declared twice: {', '.join(dupes)}")
    known = set(names)
    for d in items:
        missing = [dep for dep in d.depends_on if dep not in known]
        if missing:
            raise Invalid(f"service {d.name} depends on unknown service(s): {', '.join(missing)}")
    return items


def upsert_services(session: Session, defs: Iterable[ServiceDef]) -> int:
    """Create or update services and replace their dependency edges; returns the count."""
    items = validate_defs(defs)
    existing = {s.name: s for s in session.scalars(select(Service))}
    for d in items:
        row = existing.get(d.name) or Service(name=d.name)
        row.kind, row.host, row.owner, row.env = d.kind, d.host, d.owner, d.env
        row.criticality, row.user_facing = d.criticality, d.user_facing
        session.add(row)
        existing[d.name] = row
    session.flush()
    for d in items:
        row = existing[d.name]
        row.dependencies = [
            ServiceDependency(service_id=row.id, depends_on_id=existing[dep].id)
            for dep in d.depends_on
        ]
    session.flush()
    return len(items)


def load_topology(session: Session) -> Topology:
    services = {}
    for row in session.scalars(select(Service)):
        services[row.name] = ServiceDef(
            name=row.name,
            kind=row.kind,
            host=row.host,
            owner=row.owner,
            env=row.env,
            criticality=row.criticality,
            user_facing=row.user_facing,
            depends_on=tuple(sorted(dep.depends_on.name for dep in row.dependencies)),
        )
    return Topology(services)


def to_dict(d: ServiceDef) -> dict[str, Any]:
    return {
        "name": d.name,
        "kind": d.kind,
        "host": d.host,
        "owner": d.owner,
        "env": d.env,
        "criticality": d.criticality,
        "user_facing": d.user_facing,
        "depends_on": list(d.depends_on),
    }
