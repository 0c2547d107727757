"""The simulated organisation: services, users and trouble, advanced in simulated time.

One `Estate` is deterministic for its seed and the sequence of calls made on it: each
concern (baselines, measurement noise, logs, users, faults) draws from its own seeded
stream, and time only moves when `step` is called.
"""

# ruff: noqa: S311
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from baton.sandbox.faults import SCENARIOS, Fault, GroundTruth
from baton.sandbox.logs import LogLine, LogWriter
from baton.sandbox.metrics import (
    NO_EFFECT,
    Effect,
    Levels,
    MetricSample,
    Noise,
    business_load,
    combine,
    compute_levels,
    initial_state,
    make_profile,
    noisy_values,
)
from baton.sandbox.remediation import ACTIONS, REMEDIATIONS, RemediationResult, Target
from baton.sandbox.rules import AlertEvaluator
from baton.sandbox.topology import (
    PROVIDER_CLIENTS,
    PROVIDERS,
    ServiceSpec,
    build_topology,
    downstream_of,
    topological_order,
)
from baton.sandbox.users import TicketDraft, TicketWriter


@dataclass
class Signals:
    """Everything the estate emitted while time advanced."""

    alerts: list[dict] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    tickets: list[TicketDraft] = field(default_factory=list)
    metrics: list[MetricSample] = field(default_factory=list)

    def extend(self, other: Signals) -> None:
        """Append another batch (handy when stepping in chunks)."""
        self.alerts.extend(other.alerts)
        self.logs.extend(other.logs)
        self.tickets.extend(other.tickets)
        self.metrics.extend(other.metrics)


# What one service passed downstream at one step: error excess, latency excess (ms),
# cause seen by clients ("down", "tls", "error", "slow" or None), own log family.
_Out = tuple[float, float, str | None, str | None]
_BLANK: _Out = (0.0, 0.0, None, None)
_IDLE = Levels()

_LOG_WEIGHT = {
    "web": 3.0,
    "load_balancer": 3.0,
    "api": 2.0,
    "auth": 2.0,
    "database": 1.5,
    "email": 1.5,
    "external": 0.0,
}
_LOUD_FAMILIES = frozenset(
    {"enospc", "regression", "too_many_clients", "tls_expired", "saturation"}
)
_QUEUE_MAX_BACKLOG = 12000.0
_EPISODE_QUIET_STEPS = 20  # healthy this long, and users treat the next trouble as new


class Estate:
    """A deterministic simulated estate that emits alerts, logs, tickets and metrics."""

    def __init__(self, seed: int, start: datetime, step_seconds: float = 30.0) -> None:
        if start.tzinfo is None:
            raise ValueError("Estate needs a timezone-aware start time")
        if not step_seconds > 0:
            raise ValueError(f"step_seconds must be positive, got {step_seconds!r}")
        self._seed = seed
        self._start = start.astimezone(UTC)
        self._dt = float(step_seconds)
        self._k = 0
        self._now = self._start

        specs = list(build_topology())
        self._specs = specs
        self._index = {s.name: i for i, s in enumerate(specs)}
        self._order = [self._index[n] for n in topological_order(specs)]
        setup = random.Random(f"{seed}:estate")
        self._profiles = [make_profile(s, setup) for s in specs]
        self._states = [
            initial_state(s, p, setup, self._start)
            for s, p in zip(specs, self._profiles, strict=True)
        ]
        # Per service: (dependency index, error coupling, latency coupling, delay in steps).
        self._edges = [
            [
                (
                    self._index[d],
                    setup.uniform(0.45, 0.7),
                    setup.uniform(0.6, 0.9),
                    1 if setup.random() < 0.7 else 2,
                )
                for d in s.depends_on
            ]
            for s in specs
        ]
        self._consumers: dict[int, list[int]] = {}
        for i, s in enumerate(specs):
            if s.kind == "worker":
                for d in s.depends_on:
                    if specs[self._index[d]].kind == "queue":
                        self._consumers.setdefault(self._index[d], []).append(i)

        self._noise = Noise(random.Random(f"{seed}:noise"))
        self._log_rng = random.Random(f"{seed}:logs")
        self._logs = LogWriter(self._log_rng, specs)
        self._user_facing = [i for i, s in enumerate(specs) if s.user_facing]
        self._tickets = TicketWriter(
            random.Random(f"{seed}:users"), [specs[i].name for i in self._user_facing]
        )
        self._fault_rng = random.Random(f"{seed}:faults")
        self._rules = AlertEvaluator(specs, self._profiles)

        cum, total = [], 0.0
        for s in specs:
            total += _LOG_WEIGHT.get(s.kind, 1.0)
            cum.append(total)
        self._log_cum = cum

        self._faults: list[Fault] = []
        self._active: dict[int, list[Fault]] = {}
        blank = [_BLANK] * len(specs)
        self._hist: deque[list[_Out]] = deque([blank, blank, blank], maxlen=3)
        # Ground truth of causation, for scorers: which fault each service's trouble came
        # from at each step (parallel to `_hist`), and so which fault each alert belongs to.
        no_cause: list[str | None] = [None] * len(specs)
        self._cause_hist: deque[list[str | None]] = deque([no_cause] * 3, maxlen=3)
        self._queue_cause: dict[int, str | None] = {}
        self._alert_cause: dict[tuple[str, str, str], str | None] = {}
        self._pending_logs: list[LogLine] = []
        self._degraded_since: dict[int, datetime] = {}
        self._quiet_steps: dict[int, int] = {}

    # -- read-only views ---------------------------------------------------------------
    def topology(self) -> list[ServiceSpec]:
        """All services, in a stable dependencies-first order."""
        return list(self._specs)

    @property
    def now(self) -> datetime:
        """Simulated time of the last step (the start time before any step)."""
        return self._now

    @property
    def step_seconds(self) -> float:
        return self._dt

    def scenario_names(self) -> list[str]:
        return list(SCENARIOS)

    def active_faults(self) -> list[str]:
        """Ids of faults not fixed yet."""
        return [f.fault_id for f in self._faults if f.fixed_at is None]

    def ground_truth(self) -> list[dict]:
        """For scorers only: every fault, what it touched and how it ended."""
        return [f.truth().as_dict() for f in self._faults]

    def ground_truth_records(self) -> list[GroundTruth]:
        """The same as `ground_truth`, as frozen records."""
        return [f.truth() for f in self._faults]

    def alert_causes(self) -> dict[tuple[str, str, str], str | None]:
        """For scorers only: (service, alertname, startsAt) of every alert that fired ->
        the fault whose trouble made it fire (followed through the dependency edge that
        carried the worst symptoms), or None when no fault was behind it."""
        return dict(self._alert_cause)

    def observe(self, service: str, metric: str) -> float:
        """The current noise-free value of a metric, from the model the alerts use."""
        i = self._idx(service)
        lv = self._levels_now(i)
        try:
            return lv.value(metric)
        except KeyError:
            known = ", ".join(self._profiles[i].metric_names())
            raise ValueError(
                f"unknown metric {metric!r} for service {service!r}; it has: {known}"
            ) from None

    def service_state(self, service: str) -> dict[str, object]:
        """What an operator could see on the service's dashboard and deploy tooling."""
        i = self._idx(service)
        spec, st, lv = self._specs[i], self._states[i], self._levels_now(i)
        return {
            "service": spec.name,
            "kind": spec.kind,
            "host": spec.host,
            "env": spec.env,
            "owner": spec.owner,
            "up": not lv.down,
            "version": st.version,
            "previous_version": st.previous_versions[-1] if st.previous_versions else None,
            "replicas": st.replicas,
            "cpu_pct": round(lv.cpu, 1),
            "memory_pct": round(lv.mem, 1),
            "disk_pct": round(lv.disk, 1),
            "latency_ms": round(lv.lat, 1),
            "error_rate": round(lv.err, 4),
            "cert_days_left": None if lv.cert is None else round(lv.cert, 2),
            "db_connections_pct": None if lv.conn is None else round(lv.conn, 1),
            "queue_depth": None if lv.queue is None else round(lv.queue),
            "provider": st.provider,
            "restarts": st.restarts,
            "started_at": st.started_at,
        }

    def misfit(self, scenario: str, service: str) -> str | None:
        """Why `scenario` cannot happen on `service`, or None when it can."""
        i = self._idx(service)
        return SCENARIOS[scenario].misfit(self._specs[i], self._profiles[i].metric_names())

    # -- changing the estate -----------------------------------------------------------
    def inject(self, scenario: str, service: str | None = None) -> str:
        """Start a fault now on `service` (or the scenario's default root); returns its id."""
        sc = SCENARIOS.get(scenario)
        if sc is None:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        name = service if service is not None else sc.default_root
        i = self._idx(name)
        spec, prof, st = self._specs[i], self._profiles[i], self._states[i]
        why = sc.misfit(spec, prof.metric_names())
        if why:
            raise ValueError(why)
        for f in self._active.get(i, ()):
            if f.scenario == scenario:
                raise ValueError(f"scenario {scenario!r} is already active on service {name!r}")
        reach = {name} | downstream_of(self._specs, name)
        for q, consumers in self._consumers.items():
            if any(self._specs[c].name in reach for c in consumers):
                reach.add(self._specs[q].name)
        fault = Fault(
            fault_id=f"F-{len(self._faults) + 1:04d}",
            scenario=scenario,
            root=name,
            started_at=self._now,
            fix_targets=frozenset({name, *PROVIDER_CLIENTS.get(name, ())}),
            reach=frozenset(reach),
        )
        events = sc.start(fault, st, prof, self._fault_rng, self._now, business_load(self._now))
        for ev in events:
            self._pending_logs.extend(self._logs.event(self._now, spec, ev, st.version))
        self._faults.append(fault)
        self._active.setdefault(i, []).append(fault)
        return fault.fault_id

    def remediate(self, action: str, service: str, **params: object) -> RemediationResult:
        """Carry out an operator action now; it fixes a fault only if it addresses it."""
        fn = ACTIONS.get(action)
        if fn is None:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(REMEDIATIONS)}")
        i = self._idx(service)
        spec, st = self._specs[i], self._states[i]
        group: list = []
        if st.provider is not None:
            ext = next(e for e, pair in PROVIDERS.items() if st.provider in pair)
            group = [self._states[self._index[n]] for n in (ext, *PROVIDER_CLIENTS.get(ext, ()))]
        target = Target(
            spec=spec,
            state=st,
            profile=self._profiles[i],
            now=self._now,
            params=dict(params),
            current=lambda m: self._levels_now(i).value(m),
            provider_group=group,
        )
        changed, detail, line = fn(target)
        if changed:
            for root, faults in self._active.items():
                for f in list(faults):
                    sc = SCENARIOS[f.scenario]
                    if (
                        service in f.fix_targets
                        and action in sc.fixes
                        and sc.healed(f, self._states[root])
                    ):
                        f.fixed_at = self._now
                        f.fixed_by = action
                        faults.remove(f)
            if line:
                self._pending_logs.append(self._logs.action(self._now, spec, line))
        return RemediationResult(action, service, changed, detail)

    def step(self, until: datetime) -> Signals:
        """Advance to `until` in whole steps and return everything emitted meanwhile."""
        if until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        if until < self._now:
            raise ValueError(f"until {until.isoformat()} is before now {self._now.isoformat()}")
        target = int((until - self._start).total_seconds() / self._dt + 1e-9)
        sig = Signals()
        while self._k < target:
            self._tick(sig)
        return sig

    # -- the model -----------------------------------------------------------------------
    def _idx(self, service: str) -> int:
        i = self._index.get(service) if isinstance(service, str) else None
        if i is None:
            raise ValueError(f"unknown service {service!r}")
        return i

    def _effect(self, i: int) -> Effect:
        faults = self._active.get(i)
        if not faults:
            return NO_EFFECT
        st, p = self._states[i], self._profiles[i]
        return combine([SCENARIOS[f.scenario].effect(f, st, p) for f in faults])

    def _inherit(self, i: int, h1: list[_Out], h2: list[_Out]) -> tuple[float, float, int]:
        """Symptoms arriving from dependencies, each after its own hop delay."""
        err_in = lat_in = worst_score = 0.0
        worst = -1
        for d, ce, cl, delay in self._edges[i]:
            e, lat, _, _ = (h1 if delay == 1 else h2)[d]
            if e == 0.0 and lat == 0.0:
                continue
            if ce * e > err_in:
                err_in = ce * e
            if cl * lat > lat_in:
                lat_in = cl * lat
            score = e + lat / 1000.0
            if score > worst_score:
                worst, worst_score = d, score
        return err_in, lat_in, worst

    def _levels_now(self, i: int) -> Levels:
        """Levels at `now` for the current state (after any remediation since the step)."""
        err_in, lat_in, _ = self._inherit(i, self._hist[-2], self._hist[-3])
        return compute_levels(
            self._profiles[i],
            self._states[i],
            self._effect(i),
            err_in,
            lat_in,
            business_load(self._now),
            self._now,
        )

    def _tick(self, sig: Signals) -> None:
        self._k += 1
        now = self._start + timedelta(seconds=self._k * self._dt)
        self._now = now
        dt = self._dt
        load = business_load(now)
        h1, h2 = self._hist[-1], self._hist[-2]
        specs, profiles, states = self._specs, self._profiles, self._states
        logs, alerts, metrics = sig.logs, sig.alerts, sig.metrics
        writer, lrand, noise = self._logs, self._log_rng.random, self._noise
        if self._pending_logs:
            logs.extend(self._pending_logs)
            self._pending_logs.clear()

        c1, c2 = self._cause_hist[-1], self._cause_hist[-2]
        for q, consumers in self._consumers.items():
            stuck = max(h1[c][0] for c in consumers)
            st = states[q]
            if stuck > 0.02:  # consumers failing: messages pile up, to the queue's max-length
                self._queue_cause[q] = c1[max(consumers, key=lambda c: h1[c][0])]
                st.queue_backlog = min(_QUEUE_MAX_BACKLOG, st.queue_backlog + 40.0 * stuck * dt)
            elif st.queue_backlog:  # consumers catch up fast once healthy
                st.queue_backlog = max(0.0, st.queue_backlog - 100.0 * dt)

        cur: list[_Out] = [_BLANK] * len(specs)
        causes: list[str | None] = [None] * len(specs)
        levels: list[Levels] = [_IDLE] * len(specs)
        for i in self._order:
            spec, p, st = specs[i], profiles[i], states[i]
            faults = self._active.get(i)
            if faults:
                effs = []
                for f in faults:
                    sc = SCENARIOS[f.scenario]
                    for ev in sc.advance(f, st, p, now, dt):
                        logs.extend(writer.event(now, spec, ev, st.version))
                    effs.append(sc.effect(f, st, p))
                eff = combine(effs)
            else:
                eff = NO_EFFECT
            err_in, lat_in, worst = self._inherit(i, h1, h2)
            lv = compute_levels(p, st, eff, err_in, lat_in, load, now)
            levels[i] = lv
            causes[i] = self._cause_of(i, faults, worst, c1, c2)
            family = eff.log or ("tls_expired" if lv.tls_broken else None)
            cur[i] = (lv.err_excess, lv.lat_excess, lv.cause, family)

            vals = noisy_values(lv, noise)
            name, host = spec.name, spec.host
            for metric, value in vals.items():
                metrics.append(MetricSample(now, name, host, metric, value))
            sent = len(alerts)
            self._rules.evaluate(i, vals, now, alerts)
            for alert in alerts[sent:]:
                key = (name, alert["labels"]["alertname"], alert["startsAt"])  # type: ignore[index]
                self._alert_cause.setdefault(key, causes[i])

            if family is not None:
                pct = lv.disk if family in ("enospc", "disk_warn") else lv.mem
                # failing requests write one or two lines a step; warnings every other step
                lines = int(lrand() < 0.5) + (family in _LOUD_FAMILIES)
                for _ in range(lines):
                    logs.append(writer.trouble(now, spec, family, pct))
            if (
                worst >= 0
                and (err_in > 0.02 or lat_in > 100.0)
                and lrand() < min(0.9, 0.3 + 2.0 * err_in + lat_in / 5000.0)
            ):
                _, _, cause, fam = h1[worst] if h1[worst][2] else h2[worst]
                logs.append(writer.upstream(now, spec, specs[worst], cause or "error", fam))
            if st.down_left > 0.0:
                st.down_left = max(0.0, st.down_left - dt)
        self._hist.append(cur)
        self._cause_hist.append(causes)

        n_routine = int(1.5 + 3.0 * load + lrand())
        for i in self._log_rng.choices(range(len(specs)), cum_weights=self._log_cum, k=n_routine):
            if not levels[i].down:
                logs.append(writer.normal(now, specs[i], levels[i].lat))

        self._track_affected(levels)
        self._users(now, levels, sig.tickets)

    def _cause_of(
        self,
        i: int,
        own: list[Fault] | None,
        worst: int,
        c1: list[str | None],
        c2: list[str | None],
    ) -> str | None:
        """A service's own fault wins; else the cause carried by its worst dependency; else,
        for a queue, the cause of the consumers that stopped draining it."""
        if own:
            return own[0].fault_id
        if worst >= 0:
            delay = next(dl for d, _, _, dl in self._edges[i] if d == worst)
            return (c1 if delay == 1 else c2)[worst]
        if self._states[i].queue_backlog:
            return self._queue_cause.get(i)
        return None

    def _track_affected(self, levels: list[Levels]) -> None:
        active = [f for faults in self._active.values() for f in faults]
        if not active:
            return
        for i, lv in enumerate(levels):
            if lv.symptomatic:
                name = self._specs[i].name
                for f in active:
                    if name in f.reach and name not in f.affected:
                        f.affected.append(name)

    def _users(self, now: datetime, levels: list[Levels], out: list[TicketDraft]) -> None:
        dt = self._dt
        for i in self._user_facing:
            lv, name = levels[i], self._specs[i].name
            sev_err = lv.err_excess / 0.15
            sev_lat = lv.lat_excess / 1500.0
            degraded = lv.down or lv.tls_broken or lv.err_excess > 0.03 or lv.lat_excess > 300.0
            if not degraded:
                if i in self._degraded_since:
                    quiet = self._quiet_steps.get(i, 0) + 1
                    self._quiet_steps[i] = quiet
                    if quiet >= _EPISODE_QUIET_STEPS:
                        del self._degraded_since[i]
                        self._tickets.episode_over(name)
                continue
            self._quiet_steps[i] = 0
            since = self._degraded_since.setdefault(i, now)
            if lv.down or (lv.err >= 0.9 and not lv.tls_broken):
                symptom, severity = "down", 1.0
            elif lv.tls_broken:
                symptom, severity = "cert", 1.0
            elif sev_lat > sev_err:
                symptom, severity = "slow", sev_lat
            else:
                symptom, severity = "error", sev_err
            ticket = self._tickets.on_degraded(now, name, symptom, severity, since, dt)
            if ticket is not None:
                out.append(ticket)
        ticket = self._tickets.everyday(now, dt)
        if ticket is not None:
            out.append(ticket)
