"""The service catalogue and its dependency graph (edges point upstream).

Besides declared dependencies the graph knows where things run: a service's `hosts`
(nodes, VMs) and a node's `zone` are edges upstream too, and a `shared` service (DNS,
say) is declared once and needed by every service that is not itself infrastructure.
Those are *infrastructure* edges: many unrelated services hang off one node or zone, so
grouping treats them with more care than an owner's declared dependency.
"""

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
    hosts: tuple[str, ...] = ()  # nodes or machines it runs on (declared as services)
    zone: str | None = None  # for a node: the zone (or rack, datacentre) it is in
    shared: bool = False  # shared infrastructure: every application service needs it
    endpoints: tuple[str, ...] = ()  # URLs it answers on (probes name these)

    def placement(self) -> dict[str, Any]:
        """What the services table keeps of where it runs."""
        out: dict[str, Any] = {}
        if self.hosts:
            out["hosts"] = list(self.hosts)
        if self.zone:
            out["zone"] = self.zone
        if self.shared:
            out["shared"] = True
        if self.endpoints:
            out["endpoints"] = list(self.endpoints)
        return out


INFRA_KINDS = frozenset({"node", "zone", "host", "dns", "ingress", "network"})


@dataclass
class Topology:
    """An in-memory view of the graph for fast upstream/downstream questions."""

    services: dict[str, ServiceDef] = field(default_factory=dict)

    @cached_property
    def _edges(self) -> dict[str, tuple[str, ...]]:
        """Every service's direct needs: declared dependencies, then its hosts, its zone,
        and the shared services (which need nothing implicitly themselves)."""
        shared = sorted(n for n, d in self.services.items() if d.shared)
        out: dict[str, tuple[str, ...]] = {}
        for name, d in self.services.items():
            needs = [*d.depends_on, *d.hosts]
            if d.zone:
                needs.append(d.zone)
            if not d.shared and d.kind not in INFRA_KINDS:
                needs += [s for s in shared if s != name]
            out[name] = tuple(dict.fromkeys(n for n in needs if n in self.services))
        return out

    @cached_property
    def _infra(self) -> frozenset[tuple[str, str]]:
        """Edges that are placement or shared infrastructure, not an owner's dependency."""
        return frozenset(
            (name, dep)
            for name, deps in self._edges.items()
            for dep in deps
            if dep not in self.services[name].depends_on
        )

    def needs(self, name: str) -> tuple[str, ...]:
        """Direct upstream edges of `name` (declared, placement and shared)."""
        return self._edges.get(name, ())

    def infra_edge(self, a: str, b: str) -> bool:
        """Is `a` -> `b` a placement or shared-infrastructure edge?"""
        return (a, b) in self._infra

    def infrastructure(self, name: str) -> bool:
        """A node, zone or shared service: a thing many unrelated services stand on."""
        d = self.services.get(name)
        return d is not None and (d.shared or d.kind in INFRA_KINDS)

    def by_endpoint(self, url: str) -> str | None:
        """The service answering on `url` (scheme and host must match a declared one)."""
        return self._endpoints.get(_origin_of(url))

    @cached_property
    def _endpoints(self) -> dict[str, str]:
        return {_origin_of(u): n for n, d in self.services.items() for u in d.endpoints}

    def hosted_on(self, name: str) -> tuple[str, ...]:
        d = self.services.get(name)
        return d.hosts if d else ()

    @cached_property
    def _upstream(self) -> dict[str, frozenset[str]]:
        memo: dict[str, frozenset[str]] = {}

        def visit(name: str, trail: frozenset[str]) -> frozenset[str]:
            if name in memo:
                return memo[name]
            found: set[str] = set()
            for dep in self.needs(name):
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
            frontier = {dep for name in frontier for dep in self.needs(name) if dep not in seen}
            if b in frontier:
                return depth
            seen |= frontier
        return None  # pragma: no cover - upstream() said b is reachable

    @cached_property
    def _downstream(self) -> dict[str, frozenset[str]]:
        return _inverted({name: self.upstream(name) for name in self.services})

    def downstream(self, name: str) -> frozenset[str]:
        """Everything that needs `name`, directly or transitively."""
        return self._downstream.get(name, frozenset())

    @cached_property
    def _dependents(self) -> dict[str, frozenset[str]]:
        return _inverted({name: self.needs(name) for name in self.services})

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


def _inverted(edges: dict[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Who points at each name: the reverse of an edge map."""
    out: dict[str, set[str]] = {}
    for name, targets in edges.items():
        for target in targets:
            out.setdefault(target, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


def service_def(item: dict[str, Any]) -> ServiceDef:
    """A ServiceDef from a catalogue entry or API body (lists become tuples); ValueError
    naming the entry when a field is unknown."""
    known = set(ServiceDef.__dataclass_fields__)
    extra = sorted(set(item) - known)
    if extra or "name" not in item:
        problem = f"unknown field(s) {', '.join(extra)}" if extra else "no name"
        raise ValueError(f"service {item.get('name', '?')}: {problem}")
    lists = ("depends_on", "hosts", "endpoints")
    return ServiceDef(**{k: tuple(v) if k in lists else v for k, v in item.items()})


def load_catalogue(data: Any) -> list[ServiceDef]:
    """A catalogue file's services: a list of entries, or {"services": [...]}."""
    items = data.get("services", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("a catalogue is a list of services (or {services: [...]})")
    return validate_defs(service_def(dict(i)) for i in items)


def validate_defs(defs: Iterable[ServiceDef]) -> list[ServiceDef]:
    """Check names are unique and every dependency is declared; `Invalid` otherwise."""
    items = list(defs)
    names = [d.name for d in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise Invalid(f"service declared twice: {', '.join(dupes)}")
    known = set(names)
    for d in items:
        missing = [
            dep for dep in (*d.depends_on, *d.hosts, *filter(None, [d.zone])) if dep not in known
        ]
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
        row.placement = d.placement() or None
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
        where = row.placement or {}
        services[row.name] = ServiceDef(
            name=row.name,
            kind=row.kind,
            host=row.host,
            owner=row.owner,
            env=row.env,
            criticality=row.criticality,
            user_facing=row.user_facing,
            depends_on=tuple(sorted(dep.depends_on.name for dep in row.dependencies)),
            hosts=tuple(where.get("hosts", ())),
            zone=where.get("zone"),
            shared=bool(where.get("shared", False)),
            endpoints=tuple(where.get("endpoints", ())),
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
        **d.placement(),
    }


def _origin_of(url: str) -> str:
    """scheme://host of a URL (lower case, no port, path or query): what a probe and a
    catalogue entry must agree on."""
    scheme, _, rest = url.strip().lower().partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    return f"{scheme}://{host}" if rest else url.strip().lower()
