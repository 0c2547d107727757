"""Which open incident a new alert belongs to, and why: the correlator's features.

Features, strongest first, each recorded with its score on the incident:

- refire: the same alert (fingerprint) fired before in the incident (reopened if it
  resolved within the window, unless the alert is flapping). A flapping alert links
  by refire or same-service only, and not at all if it shows no service impact.
- same-service: another alert of the same service is in the incident.
- downstream: the service depends (transitively) on a service of the incident that shows
  a service-level impact (`impact_matchers`); nearer is stronger, and depending on the
  incident's origin itself beats depending on one of its symptoms.
- consumer-backlog: a queue backing up behind a worker in the incident.
- upstream-of-origin: a cause found late; only for new, unheld trouble that began within
  ORIGIN_LAG of the incident and that most of its direct dependents suffer from.
- runs-on: the alert's pod runs on a node (its `node` label) that is in the incident.
- shared-cause: services that do not depend on one another but share a node, zone or
  shared service (DNS, say) began failing together, and most of what stands on that
  shared thing is failing: it is the probable origin of them all.
- similarity: for services the graph does not know, alert name, labels and summary alike.

Candidates are found through indexes (candidates.py): only incidents that share a
service of the alert's graph neighbourhood, its host or entity, or (for services the
graph does not know) words of its alerts are scored, so placing an alert costs the same
with ten open incidents or ten thousand.

Time is the time trouble began: the source's `startsAt` (a rule's `for` delays the first
send by minutes), never after Baton first saw it. Links over infrastructure edges (a
workload to its node, a node to its zone, anything to a shared service) also need the
two troubles to have begun within INFRA_LAG of each other: a node, a zone or DNS is
upstream of so much that "depends on something in the incident" alone would join any
fault to any other. A symptom (a member that is not the origin) whose trouble began more
than SYMPTOM_LAG before carries nothing onward, and neither does same-service for it:
fresh trouble there is something else reaching it.

An alert that was already firing (on and off) before an incident began is not linked
to it by anything but refire: effects do not come before their causes. Graph scores
fade with the time since the linked service's latest new alert in that
incident, so when two faults' blast radii share a service, a symptom goes to the one
whose trouble reached that neighbourhood just before it. For the same reason an alert
waits while new trouble upstream of it is still in its transient hold, and a held alert
that shows no impact waits out its own hold before it links to anything. Being upstream of a mere
symptom never links: that is how two faults sharing a downstream service would chain
into one incident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baton.correlate.candidates import CandidateIndex
from baton.correlate.config import CorrelationConfig
from baton.correlate.cooccurrence import LINK_WEIGHT, VETO_WEIGHT, Learned, learn
from baton.correlate.matchers import match_all, parse_all
from baton.correlate.suppress import may_open
from baton.correlate.topology import Topology
from baton.kernel.enums import EventStatus, IncidentStatus
from baton.sense.events import SEVERITY_RANK
from baton.store.models import Event, Incident

ORIGIN_LAG = timedelta(minutes=3)  # a cause alerts before (or about when) its effects do
SIMILAR_ENOUGH = 0.5  # label/text similarity that groups alerts the graph knows nothing of
SIMILAR_WINDOW = timedelta(minutes=5)
CAUSE_COVERAGE = 0.5  # a late-found cause must explain this share of its direct dependents
FADE = 0.6  # how much of a graph score fades over one correlation window
INFRA_LAG = timedelta(minutes=5)  # a node's, zone's or shared service's trouble and its effects
SHARED_LAG = timedelta(minutes=4)  # "began together", for services with a shared cause
SHARED_COVERAGE = 0.5  # of what stands on a shared thing, the share that must be failing
SYMPTOM_LAG = timedelta(minutes=5)  # how long a symptom (not the origin) carries trouble on
ORIGIN_REACH = timedelta(minutes=10)  # how long after its onset an origin still spreads
MAX_PENDING = timedelta(minutes=30)  # how far back a source's startsAt is believed

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_TEXT_LABELS = ("alertname", "job", "host", "team", "namespace", "cluster")


def tokens(name: str, labels: dict[str, Any], annotations: dict[str, Any]) -> frozenset[str]:
    """Words of an alert's name, identifying labels and summary, for similarity."""
    texts = [name, *(str(labels.get(k, "")) for k in _TEXT_LABELS)]
    texts.append(str(annotations.get("summary", "")))
    return frozenset(w.lower() for text in texts for w in _WORD.findall(text) if len(w) > 2)


def _event_tokens(event: Event) -> frozenset[str]:
    return tokens(event.name, event.labels or {}, event.annotations or {})


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two token sets."""
    return len(a & b) / len(a | b) if a and b else 0.0


def began(event: Event) -> datetime:
    """When its trouble began: the source's startsAt, but not after Baton first saw it
    and not more than MAX_PENDING before that."""
    starts = event.starts_at
    if starts is None:
        return event.first_seen
    return min(event.first_seen, max(starts, event.first_seen - MAX_PENDING))


def _origin(inc: Incident) -> str | None:
    """The incident's origin; one opened in this very batch has its first service."""
    return inc.origin_service or (inc.services[0] if inc.services else None)


def _pod_scoped(event: Event) -> bool:
    """Is the alert about one pod (restarts, memory, throttling, readiness)? A pod's own
    state is explained by where it runs (runs-on) or by its own workload (same-service),
    not by a service it calls: a dependency's trouble shows in the caller's requests."""
    return (event.entity or "").startswith("pod:")


@dataclass(frozen=True)
class Member:
    """What the incident knows of one of its services."""

    latest: datetime  # first_seen of its newest alert in the incident
    impact: bool  # shows a service-level impact, so it can explain its dependents
    names: frozenset[str]  # its alert names
    began: datetime  # when its trouble in the incident began (earliest alert)
    firing: bool = True  # one of its alerts in the incident still fires


@dataclass(frozen=True)
class Episode:
    """One earlier firing of an alert (same fingerprint)."""

    incident_id: int | None
    first_seen: datetime
    ends_at: datetime | None


@dataclass
class Grouper:
    """Finds and scores the candidate incidents for events of one batch."""

    session: Session
    graph: Topology
    now: datetime
    cfg: CorrelationConfig
    _members: dict[int, dict[str, Member]] = field(default_factory=dict)
    _words: dict[int, frozenset[str]] = field(default_factory=dict)
    _history: dict[str, dict[int, Episode]] = field(default_factory=dict)
    _failing: dict[str, bool] = field(default_factory=dict)
    _pending: dict[int, tuple[str | None, datetime]] | None = None
    _troubled: dict[str, datetime | None] = field(default_factory=dict)
    index: CandidateIndex = field(init=False)
    _learned: Learned | None = None

    def __post_init__(self) -> None:
        self.index = CandidateIndex(self.session, self.now, self.cfg.window)

    def prefetch(self, events: list[Event]) -> None:
        """Read the earlier episodes of the batch's alerts in one go (by fingerprint)."""
        prints = sorted({e.fingerprint for e in events} - set(self._history))
        for start in range(0, len(prints), 500):
            chunk = prints[start : start + 500]
            for fp in chunk:
                self._history[fp] = {}
            rows = self.session.execute(
                select(
                    Event.fingerprint, Event.id, Event.incident_id, Event.first_seen, Event.ends_at
                ).where(Event.fingerprint.in_(chunk))
            )
            for fp, event_id, incident_id, first_seen, ends_at in rows:
                self._history[fp][event_id] = Episode(incident_id, first_seen, ends_at)

    def changed(self, incident_id: int, event: Event) -> None:
        """An event joined the incident: forget what was known of its members, add its
        words to the incident's, and note where this episode of the alert went."""
        self._members.pop(incident_id, None)
        words = _event_tokens(event)
        self.index.add_words(incident_id, words)
        if incident_id in self._words:
            self._words[incident_id] |= words
        if event.fingerprint in self._history:
            self._history[event.fingerprint][event.id] = Episode(
                incident_id, event.first_seen, event.ends_at
            )
        if self._pending is not None:
            self._pending.pop(event.id, None)
        if event.service:
            self._failing[event.service] = True
        if event.service in self._troubled and self._impact(event):
            at, was = began(event), self._troubled[event.service or ""]
            self._troubled[event.service or ""] = min(at, was) if was else at

    def candidates(self, event: Event) -> list[tuple[Incident, dict[str, Any]]] | None:
        """Incidents the event could join, best first, each with its reason; None when it
        should wait (see `_should_wait`)."""
        flapping = event.suppressed_by == "flapping"
        if flapping and not self._impact(event):
            return []  # a flapping alert that shows no service impact is just noise
        previous = self._previous_incident(event)
        if previous is not None:
            reason = self._reason(event, "refire", 1.0, f"{event.name} fired before in it")
            return [(previous, reason)]
        if not flapping and self._should_wait(event):
            return None
        found: list[tuple[Incident, dict[str, Any]]] = []
        for inc in self.index.incidents(self._lookup(event)):
            if self._already_troubled(event, inc):
                continue  # it was firing on and off before this trouble began: not its effect
            link = self._link(event, inc)
            graph_link = link is not None and link[0] not in ("same-service", "learned")
            if graph_link and self._vetoed(event, inc):
                continue  # people split these services apart: the graph alone won't do
            if flapping and link is not None and link[0] != "same-service":
                continue  # a flapping alert is too unsteady to link by anything weaker
            if link is not None:
                rule, score, detail, trouble, *via = link
                reason = self._reason(event, rule, score, detail)
                reason["trouble"] = trouble  # alerts on the linked service: a tie-breaker
                if via:
                    reason["via"] = via[0]  # the shared thing it stands on
                found.append((inc, reason))
        return self._ranked(event, found)

    def _lookup(self, event: Event) -> set[int]:
        """The incidents any feature could link the event to (see candidates.py)."""
        service = event.service or "unknown"
        found = self.index.by_place(event.entity, event.host)
        if not self.graph.known(service):
            words = _event_tokens(event)
            return found | self.index.by_words(words, self.now - SIMILAR_WINDOW)
        g = self.graph
        near = {service, *g.upstream(service), *g.consumers(service)}
        found |= self.index.by_services(near)
        mine = began(event)
        # shared cause: what stands on the same node, zone or shared service, lately
        beside = {d for up in g.upstream(service) if g.infrastructure(up) for d in g.dependents(up)}
        found |= self.index.by_services(beside - near, seen_since=mine - SHARED_LAG)
        # a late-found cause: incidents that opened lately on something that needs it
        late = g.downstream(service) - near
        found |= self.index.by_services(late, opened_since=mine - ORIGIN_LAG)
        # learned partners: services people (or past incidents) put with this one
        partners = self.learned().partners(service, LINK_WEIGHT)
        return found | self.index.by_services(partners, seen_since=mine - SHARED_LAG)

    def observation(self, event: Event) -> bool:
        """Low severity and no sign of impact: it waits on its entity, opens nothing."""
        floor = self.cfg.observe_below
        if floor is None or self._impact(event):
            return False
        return SEVERITY_RANK.get(event.severity, 1) < SEVERITY_RANK.get(floor, 2)

    def merged(self, into: int, gone: int) -> None:
        """Incident `gone` was taken over by `into`: what was cached of both is stale."""
        self._members.pop(into, None)
        self._members.pop(gone, None)
        self._words.pop(into, None)
        self.index.moved(gone, into)
        for episodes in self._history.values():
            for event_id, ep in list(episodes.items()):
                if ep.incident_id == gone:
                    episodes[event_id] = Episode(into, ep.first_seen, ep.ends_at)

    def _should_wait(self, event: Event) -> bool:
        """Wait while a likely cause upstream is held (so it opens its incident first), and
        while this alert is held itself and shows no impact (a blip joins nothing)."""
        held = event.held_until is not None and event.held_until > self.now
        return self._cause_pending(event) or (held and not self._impact(event))

    def _ranked(
        self, event: Event, found: list[tuple[Incident, dict[str, Any]]]
    ) -> list[tuple[Incident, dict[str, Any]]]:
        """Best first: score, then the neighbour in more trouble, then similar text."""
        top = max((r["score"] for _, r in found), default=0.0)
        tied = [(inc, r) for inc, r in found if r["score"] == top]
        if len(tied) > 1:  # a tie on the graph is broken by how alike the alerts read
            mine = _event_tokens(event)
            for inc, reason in tied:
                reason["similarity"] = round(similarity(mine, self._tokens(inc.id)), 3)
        found.sort(
            key=lambda p: (
                -p[1]["score"],
                -p[1]["trouble"],
                -p[1].get("similarity", 0.0),
                p[0].id,
            )
        )
        return found

    def _reason(self, event: Event, rule: str, score: float, detail: str) -> dict[str, Any]:
        return {
            "rule": rule,
            "detail": detail,
            "score": score,
            "event_id": event.id,
            "service": event.service or "unknown",
            "window_s": self.cfg.window_s,
        }

    def _link(self, event: Event, inc: Incident) -> tuple[Any, ...] | None:
        """(rule, score, detail, how many kinds of alert the linked service has)."""
        service = event.service or "unknown"
        if not self.graph.known(service):
            if self.now - inc.updated_at > SIMILAR_WINDOW:
                return None
            mine = _event_tokens(event)
            sim = similarity(mine, self._tokens(inc.id))
            if sim < SIMILAR_ENOUGH:
                return None
            return "similarity", round(sim, 3), f"alert text and labels {sim:.0%} alike", 0
        members = self._profile(inc.id)
        if (
            service in members
            and self._still_there(members[service], event, inc)
            and self._placed_under(event, _origin(inc))
        ):
            score = self._faded(1.0, members[service], event)
            return "same-service", score, f"same service {service}", len(members[service].names)
        if event.host and event.host in members and members[event.host].impact:
            m = members[event.host]
            if abs(began(event) - m.began) <= INFRA_LAG:
                score = self._faded(0.95, m, event)
                return "runs-on", score, f"{service} runs on {event.host}", len(m.names)
        effects = {r.get("service") for r in inc.grouping if r.get("rule") == "consumer-backlog"}
        origin = _origin(inc)
        own_trouble = _pod_scoped(event)
        links = [
            (self._faded(0.9 / hops + self._bonus(name, origin, m, event), m, event), hops, name)
            for name, m in members.items()
            if m.impact
            and name not in effects
            and not own_trouble
            and (hops := self.graph.hops(service, name))
            and self._placed_there(event, name, m, members, origin)
        ]
        if links:
            score, hops, name = max(links, key=lambda x: (x[0], -x[1], len(members[x[2]].names)))
            via = ", its origin" if name == origin else ""
            same = ", same kind of alert" if event.name in members[name].names else ""
            detail = f"{service} depends on {name} ({hops} hop(s){via}{same})"
            return "downstream", score, detail, len(members[name].names)
        stalled = sorted(self.graph.consumers(service) & set(members))
        if stalled:
            return "consumer-backlog", 0.8, f"{stalled[0]} consumes from {service}", 0
        return (
            self._late_cause(event, inc)
            or self._shared_cause(event, members)
            or self._learned_link(event, members)
        )

    def learned(self) -> Learned:
        """Pair weights learned from corrections and past incidents (cooccurrence.py)."""
        if self._learned is None:
            self._learned = learn(self.session, self.now, self.cfg.learn)
        return self._learned

    def _learned_link(
        self, event: Event, members: dict[str, Member]
    ) -> tuple[str, float, str, int] | None:
        """Services people (or many past incidents) put together, troubled together."""
        service, mine, learned = event.service or "unknown", began(event), self.learned()
        if not learned.weights:
            return None
        best = max(
            (
                (learned.weight(service, name), name)
                for name, m in members.items()
                if name != service and abs(m.began - mine) <= SHARED_LAG
            ),
            default=None,
        )
        if best is None or best[0] < LINK_WEIGHT:
            return None
        weight, name = best
        detail = f"learned together: {learned.explain(service, name)}"
        return "learned", round(min(0.6, 0.45 + 0.05 * weight), 3), detail, len(members[name].names)

    def _vetoed(self, event: Event, inc: Incident) -> bool:
        """Did people split this service's alerts away from a service of the incident?"""
        learned, service = self.learned(), event.service or ""
        if not learned.weights:
            return False
        return any(learned.weight(service, name) <= VETO_WEIGHT for name in self._profile(inc.id))

    def _placed_under(self, event: Event, origin: str | None) -> bool:
        """An incident whose origin is a node (or a zone) explains the alerts of pods
        placed there; a pod of the same service elsewhere is in other trouble."""
        if not origin or not event.host or not self.graph.known(event.host):
            return True
        kind = self.graph.kind(origin)
        if kind == "node":
            return event.host == origin
        if kind == "zone":
            return origin in self.graph.upstream(event.host) or event.host == origin
        return True

    def _still_there(self, member: Member, event: Event, inc: Incident) -> bool:
        """Same service, same trouble? Not once its alerts in the incident all resolved
        and this one began well after them; nor, for a service that is not the origin,
        an alert beginning more than SYMPTOM_LAG after its trouble here began (a symptom
        of something else reaching it)."""
        late = began(event) - member.began > SYMPTOM_LAG
        if late and event.service != _origin(inc):
            return False
        return member.firing or began(event) - member.latest <= SIMILAR_WINDOW

    def _placed_there(
        self,
        event: Event,
        name: str,
        member: Member,
        members: dict[str, Member],
        origin: str | None = None,
    ) -> bool:
        """A link to infrastructure needs the two troubles to begin close together, and a
        pod whose node is known is only an effect of that node's trouble."""
        if member.began > began(event) + ORIGIN_LAG:
            return False  # effects do not come before their causes
        reach = ORIGIN_REACH if name == origin else SYMPTOM_LAG
        if began(event) - member.began > reach:
            return False  # long in trouble, it carries no fresh trouble onward
        if not self.graph.infrastructure(name):
            return True
        if self.graph.kind(name) == "node" and event.host and event.host != name:
            return False
        if abs(began(event) - member.began) > INFRA_LAG:
            return False
        spec = self.graph.services.get(name)
        if spec is not None and spec.shared:  # everything needs it: most must be failing
            failing, total = self._coverage(name, member.began, {event.service or ""})
            if failing < 3 or failing < SHARED_COVERAGE * total:
                return False
        # infrastructure whose own trouble is explained by something else in the incident
        # (DNS slow because its node is) is a symptom, not a cause for all that needs it
        return not any(
            other.began <= member.began + ORIGIN_LAG
            for up, other in members.items()
            if up != name and up in self.graph.upstream(name)
        )

    def _shared_cause(
        self, event: Event, members: dict[str, Member]
    ) -> tuple[str, float, str, int, str] | None:
        """Unrelated services of this incident and this alert's began failing together
        and stand on one node, zone or shared service that is mostly failing."""
        service = event.service or "unknown"
        if not self._impact(event):
            return None
        mine = began(event)
        best: tuple[tuple[int, int, str], str, list[str], int, int] | None = None
        for shared in self.graph.upstream(service):
            if not self.graph.infrastructure(shared):
                continue
            direct = self.graph.dependents(shared)
            if service not in direct:
                continue  # it reaches the shared thing only through something else
            together = sorted(
                name
                for name, m in members.items()
                if m.impact
                and name != service
                and name in direct
                and abs(m.began - mine) <= SHARED_LAG
            )
            if not together:
                continue
            failing, total = self._coverage(shared, mine, {service, *together})
            if not self._enough(shared, failing, total):
                continue
            # the shared thing that explains most of the trouble; then the most specific
            key = (-failing, len(self.graph.dependents(shared)), shared)
            if best is None or key < best[0]:
                best = (key, shared, together, failing, total)
        if best is None:
            return None
        _, shared, together, failing, total = best
        kind = self.graph.kind(shared) or "service"
        detail = (
            f"{service} and {', '.join(together[:3])}{' ...' if len(together) > 3 else ''} "
            f"all stand on {shared} ({kind}); {failing} of the {total} things on it began "
            f"failing within {int(SHARED_LAG.total_seconds() // 60)} min"
        )
        return "shared-cause", 0.7, detail, len(together), shared

    def _coverage(self, shared: str, around: datetime, also: set[str]) -> tuple[int, int]:
        """(how many of what stands directly on `shared` began failing within SHARED_LAG
        of `around`, how many stand on it)."""
        dependents = self.graph.dependents(shared)
        trouble = self._trouble(dependents - also)
        failing = len(dependents & also) + sum(
            1 for at in trouble.values() if at is not None and abs(at - around) <= SHARED_LAG
        )
        return failing, len(dependents)

    def _enough(self, shared: str, failing: int, total: int) -> bool:
        """Is that much failing evidence of a shared cause? Half of what stands on it, at
        least two, when it says so itself or when what stands on it alerts on its own
        (the nodes of a zone). A silent node or shared service is never inferred from
        its services alone: in a storm many services fail at once for reasons of their
        own; its own alert, however late, takes over instead (incidents._absorb)."""
        if total == 0 or failing < 2 or failing < SHARED_COVERAGE * total:
            return False
        under = self.graph.dependents(shared)
        troubled = self._trouble({shared})[shared] is not None
        return troubled or all(self.graph.infrastructure(d) for d in under)

    def _trouble(self, services: set[str] | frozenset[str]) -> dict[str, datetime | None]:
        """Service -> when its firing trouble with an impact began (this window), None
        when it has none; read through the events(service, first_seen) index and kept
        for the batch."""
        missing = sorted(set(services) - set(self._troubled))
        impact = [parse_all(group) for group in self.cfg.impact_matchers]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            self._troubled.update(dict.fromkeys(chunk))
            rows = self.session.execute(
                select(Event.service, Event.starts_at, Event.first_seen, Event.labels).where(
                    Event.service.in_(chunk),
                    Event.first_seen >= self.now - self.cfg.window,
                    Event.status == "firing",
                    Event.suppressed_by.is_(None) | (Event.suppressed_by.like("inhibition:%")),
                )
            )
            for service, starts, first, labels in rows:
                if impact and not any(match_all(g, labels or {}) for g in impact):
                    continue
                at = min(first, max(starts or first, first - MAX_PENDING))
                was = self._troubled[service]
                self._troubled[service] = min(at, was) if was else at
        return {s: self._troubled[s] for s in services}

    def _late_cause(self, event: Event, inc: Incident) -> tuple[str, float, str, int] | None:
        service, origin = event.service or "unknown", _origin(inc)
        hops = self.graph.hops(origin, service) if origin else None
        if not hops or began(event) > inc.opened_at + ORIGIN_LAG:
            return None
        first = self._profile(inc.id).get(origin or "")
        if first is not None and began(event) > first.began + ORIGIN_LAG:
            return None  # it began after the origin's trouble did: not its cause
        if not may_open(event, self.now):  # held or suppressed: too unsure to be a cause
            return None
        if self._refired(event, inc.opened_at - ORIGIN_LAG * 10):
            return None
        dependents = self.graph.dependents(service)
        coverage = len(self._failing_now(dependents)) / len(dependents) if dependents else 0
        if coverage < CAUSE_COVERAGE:
            return None
        detail = f"{origin} depends on {service}; {coverage:.0%} of its dependents failing"
        return "upstream-of-origin", round(0.6 / hops, 3), detail, 0

    @staticmethod
    def _bonus(name: str, origin: str | None, member: Member, event: Event) -> float:
        """Depending on the origin itself beats depending on a symptom; a symptom of the
        same kind (latency upstream, latency here) is likelier carried by that neighbour."""
        return (0.05 if name == origin else 0.0) + (0.02 if event.name in member.names else 0.0)

    def _faded(self, score: float, member: Member, event: Event) -> float:
        gap = max(0.0, (event.first_seen - member.latest).total_seconds())
        return round(score - FADE * min(1.0, gap / self.cfg.window_s), 3)

    def _impact(self, event: Event) -> bool:
        impact = [parse_all(group) for group in self.cfg.impact_matchers]
        return not impact or any(match_all(g, event.labels or {}) for g in impact)

    def _profile(self, incident_id: int) -> dict[str, Member]:
        if incident_id not in self._members:
            impact = [parse_all(group) for group in self.cfg.impact_matchers]
            found: dict[str, Member] = {}
            rows = self.session.execute(
                select(
                    Event.service,
                    Event.first_seen,
                    Event.labels,
                    Event.name,
                    Event.starts_at,
                    Event.status,
                ).where(Event.incident_id == incident_id)
            )
            for service, first_seen, labels, alert, starts, status in rows:
                name = service or "unknown"
                hit = not impact or any(match_all(g, labels or {}) for g in impact)
                seen = found.get(name)
                start = min(first_seen, max(starts or first_seen, first_seen - MAX_PENDING))
                found[name] = Member(
                    max(first_seen, seen.latest) if seen else first_seen,
                    hit or (seen.impact if seen else False),
                    (seen.names if seen else frozenset()) | {alert},
                    min(start, seen.began) if seen else start,
                    status == "firing" or (seen.firing if seen else False),
                )
            self._members[incident_id] = found
        return self._members[incident_id]

    def _failing_now(self, services: frozenset[str]) -> frozenset[str]:
        """Which of `services` have an alert firing now (kept for the batch)."""
        missing = sorted(services - set(self._failing))
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            self._failing.update(dict.fromkeys(chunk, False))
            query = select(Event.service).where(
                Event.service.in_(chunk), Event.status == EventStatus.FIRING
            )
            self._failing.update(dict.fromkeys(self.session.scalars(query.distinct()), True))
        return frozenset(s for s in services if self._failing[s])

    def _tokens(self, incident_id: int) -> frozenset[str]:
        if incident_id not in self._words:
            rows = self.session.execute(
                select(Event.name, Event.labels, Event.annotations)
                .where(Event.incident_id == incident_id)
                .order_by(Event.id.desc())
                .limit(50)
            )
            self._words[incident_id] = frozenset().union(
                *(tokens(n, lab or {}, ann or {}) for n, lab, ann in rows)
            )
        return self._words[incident_id]

    def _previous_incident(self, event: Event) -> Incident | None:
        """The incident the last episode of this alert (same fingerprint) was in, if it is
        open or resolved within the window: the same trouble coming back reopens it."""
        placed = [
            (event_id, ep.incident_id)
            for event_id, ep in self._episodes_of(event).items()
            if ep.incident_id is not None
        ]
        incident_id = max(placed)[1] if placed else None
        inc = self.session.get(Incident, incident_id) if incident_id else None
        if inc is None or inc.status == IncidentStatus.MERGED:
            return None
        if inc.status == IncidentStatus.RESOLVED and event.suppressed_by == "flapping":
            return None  # a flapping alert rejoins an open incident; it never reopens one
        last = inc.resolved_at or inc.updated_at
        return inc if self.now - last <= self.cfg.window else None

    def _episodes_of(self, event: Event) -> dict[int, Episode]:
        """The other episodes of this alert, by event id."""
        if event.fingerprint not in self._history:
            self.prefetch([event])
        return {i: ep for i, ep in self._history[event.fingerprint].items() if i != event.id}

    def _already_troubled(self, event: Event, inc: Incident) -> bool:
        """Did an earlier episode of this alert start before the incident and last until
        shortly before it? (A flapping neighbour, not an effect of this trouble.)"""
        before = inc.opened_at - ORIGIN_LAG
        return any(
            ep.first_seen < before and (ep.ends_at is None or ep.ends_at >= before - ORIGIN_LAG)
            for ep in self._episodes_of(event).values()
        )

    def _cause_pending(self, event: Event) -> bool:
        """Is new trouble upstream of this event still held (and so in no incident yet)?"""
        if self._pending is None:
            rows = self.session.execute(
                select(Event.id, Event.service, Event.first_seen).where(
                    Event.status == EventStatus.FIRING,
                    Event.incident_id.is_(None),
                    Event.suppressed_by.is_(None),
                    Event.held_until > self.now,
                )
            )
            self._pending = {i: (service, first_seen) for i, service, first_seen in rows}
        service = event.service or "unknown"
        return any(
            self.graph.hops(service, other or "") and first_seen >= event.first_seen - ORIGIN_LAG
            for other, first_seen in self._pending.values()
        )

    def _refired(self, event: Event, since: datetime) -> bool:
        """Has this alert fired and cleared before, recently? Then it is a known nuisance."""
        query = select(func.count()).where(
            Event.fingerprint == event.fingerprint, Event.id != event.id, Event.first_seen >= since
        )
        return bool(self.session.scalar(query))
