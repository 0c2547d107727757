"""The estate's shape: which services exist, where they run and what each one needs.

Edges point upstream (a service lists what it depends on), the way an owner describes
their own service; symptoms travel the other way, from a dependency to its dependents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceSpec:
    """One service as an inventory (CMDB) would list it."""

    name: str
    kind: str
    host: str
    depends_on: tuple[str, ...]
    owner: str | None
    user_facing: bool
    env: str = "prod"
    criticality: int = 2


def _svc(
    name: str,
    kind: str,
    host: str,
    deps: tuple[str, ...] = (),
    owner: str | None = None,
    user_facing: bool = False,
    criticality: int = 2,
) -> ServiceSpec:
    return ServiceSpec(name, kind, host, deps, owner, user_facing, "prod", criticality)


# Listed dependencies-first, so this order is also a valid evaluation order.
_SERVICES: tuple[ServiceSpec, ...] = (
    _svc("dns", "dns", "infra-01", (), "team-network", criticality=1),
    _svc("monitoring", "monitoring", "infra-01", ("dns",), "team-platform"),
    _svc("directory-ldap", "directory", "idm-01", ("dns",), "team-identity", criticality=1),
    _svc("users-db", "database", "db-02", (), "team-identity", criticality=1),
    _svc("orders-db", "database", "db-01", (), "team-commerce", criticality=1),
    _svc("cache-redis", "cache", "cache-01", (), "team-platform"),
    _svc("queue-rabbit", "queue", "mq-01", (), "team-platform"),
    _svc("search", "search", "cache-01", (), "team-commerce"),
    _svc("object-storage", "storage", "fs-01", (), "team-infra"),
    _svc("payment-provider", "external", "psp.example.net", (), "team-payments", criticality=1),
    _svc(
        "auth-sso",
        "auth",
        "idm-01",
        ("directory-ldap", "users-db", "cache-redis"),
        "team-identity",
        user_facing=True,
        criticality=1,
    ),
    _svc(
        "email-smtp",
        "email",
        "mail-01",
        ("dns", "directory-ldap"),
        "team-messaging",
        user_facing=True,
        criticality=1,
    ),
    _svc("vpn", "vpn", "edge-01", ("dns", "directory-ldap"), "team-network", True, criticality=1),
    _svc("file-storage", "storage", "fs-01", ("directory-ldap",), "team-infra", True),
    _svc("catalog-api", "api", "app-02", ("search", "cache-redis"), "team-commerce"),
    _svc("inventory-api", "api", "app-02", ("orders-db", "cache-redis"), "team-commerce"),
    _svc(
        "payments-api",
        "api",
        "app-03",
        ("payment-provider", "orders-db"),
        "team-payments",
        criticality=1,
    ),
    _svc(
        "orders-api",
        "api",
        "app-01",
        ("orders-db", "queue-rabbit", "cache-redis", "inventory-api"),
        "team-commerce",
        criticality=1,
    ),
    _svc(
        "checkout-api",
        "api",
        "app-01",
        ("orders-api", "payments-api", "auth-sso"),
        "team-commerce",
        criticality=1,
    ),
    _svc(
        "api-gateway",
        "api",
        "gw-01",
        ("auth-sso", "catalog-api", "orders-api", "checkout-api"),
        "team-platform",
        criticality=1,
    ),
    _svc(
        "web-portal",
        "web",
        "web-01",
        ("api-gateway", "auth-sso", "object-storage"),
        "team-web",
        user_facing=True,
        criticality=1,
    ),
    _svc(
        "lb-public", "load_balancer", "lb-01", ("dns", "web-portal"), "team-network", criticality=1
    ),
    _svc("worker-email", "worker", "worker-01", ("queue-rabbit", "email-smtp"), "team-messaging"),
    # Nobody owns the billing worker or reporting: the usual gaps an inventory has.
    _svc("worker-billing", "worker", "worker-01", ("queue-rabbit", "payments-api", "orders-db")),
    _svc(
        "hr-portal",
        "web",
        "app-04",
        ("auth-sso", "users-db", "file-storage"),
        "team-hr-it",
        user_facing=True,
    ),
    _svc(
        "wiki",
        "web",
        "app-04",
        ("auth-sso", "file-storage"),
        "team-it-support",
        True,
        criticality=3,
    ),
    _svc(
        "reporting",
        "reporting",
        "app-04",
        ("orders-db", "object-storage", "file-storage"),
        criticality=3,
    ),
    _svc(
        "backup",
        "backup",
        "fs-01",
        ("orders-db", "users-db", "object-storage", "file-storage"),
        "team-infra",
        criticality=3,
    ),
)

# Services that terminate TLS with a certificate we manage (and so can let expire).
TLS_SERVICES: frozenset[str] = frozenset(
    {
        "directory-ldap",
        "auth-sso",
        "email-smtp",
        "vpn",
        "api-gateway",
        "web-portal",
        "lb-public",
        "hr-portal",
        "wiki",
    }
)

# An external service with a secondary provider, and the services that route to it.
PROVIDERS: dict[str, tuple[str, str]] = {"payment-provider": ("psp-primary", "psp-secondary")}
PROVIDER_CLIENTS: dict[str, tuple[str, ...]] = {"payment-provider": ("payments-api",)}

# Kinds that can run more replicas behind a balancer without moving data.
STATELESS_KINDS: frozenset[str] = frozenset(
    {"api", "web", "load_balancer", "worker", "auth", "search", "reporting"}
)


def build_topology() -> tuple[ServiceSpec, ...]:
    """The estate's services in a stable, dependencies-first order."""
    return _SERVICES


def topological_order(specs: Sequence[ServiceSpec]) -> list[str]:
    """Dependencies before dependents; ValueError on an unknown dependency or a cycle."""
    names = {s.name for s in specs}
    for s in specs:
        for dep in s.depends_on:
            if dep not in names:
                raise ValueError(f"service {s.name!r} depends on unknown service {dep!r}")
    by_name = {s.name: s for s in specs}
    done: set[str] = set()
    visiting: set[str] = set()
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError("dependency cycle: " + " -> ".join((*path, name)))
        visiting.add(name)
        for dep in by_name[name].depends_on:
            visit(dep, (*path, name))
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for s in specs:
        visit(s.name, ())
    return order


def dependents_of(specs: Iterable[ServiceSpec]) -> dict[str, tuple[str, ...]]:
    """Direct dependents of each service (the reverse edges)."""
    out: dict[str, list[str]] = {}
    for s in specs:
        out.setdefault(s.name, [])
        for dep in s.depends_on:
            out.setdefault(dep, []).append(s.name)
    return {k: tuple(v) for k, v in out.items()}


def downstream_of(specs: Iterable[ServiceSpec], name: str) -> set[str]:
    """Every service that needs `name`, directly or transitively (not `name` itself)."""
    rev = dependents_of(specs)
    seen: set[str] = set()
    todo = list(rev.get(name, ()))
    while todo:
        cur = todo.pop()
        if cur not in seen:
            seen.add(cur)
            todo.extend(rev.get(cur, ()))
    return seen
