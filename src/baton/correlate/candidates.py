"""Finding the incidents an alert could join through indexes, so the cost of placing an
alert does not grow with the number of open incidents.

The correlator's features (grouping.py) only ever link an alert to an incident through
something the two share: a service of the alert's graph neighbourhood (itself, what it
depends on, its consumers, what depends on it), the node it runs on, its entity, or, for
services the graph does not know, the words of its alerts. So instead of scoring every
open incident, the grouper asks the database for the incidents that have a member on one
of those keys:

- near keys (the service, its upstream, its queue consumers, its host): live incidents
  updated within the correlation window that have an event there;
- wide keys (what depends on the service, for a late-found cause; what stands on the
  same node, zone or shared service, for a shared cause): the same, but only trouble
  that began recently (events first seen since, or incidents opened since), because
  those features only link troubles that began together. Wide keys can name half the
  estate (everything stands on DNS); the time bound keeps them cheap;
- words: an inverted index (incident_terms) of the words of each incident's alerts;
  each word's bucket is read newest first and only TERM_BUCKET deep, so a common word
  ("error") costs the same whether a hundred or ten thousand incidents contain it.

Every lookup returns at most BUCKET incidents, the most recently updated first. The
result is a superset of what the old scan would have linked (short of those bounds),
and the features decide among them exactly as before. Indexes used: events(service,
first_seen), events(host), events(entity), incident_terms(term, incident_id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from baton.kernel.enums import LIVE_INCIDENT
from baton.store.models import Event, Incident, IncidentTerm

BUCKET = 200  # incidents one lookup returns at most (the most recently updated)
TERM_BUCKET = 32  # incidents read per word of the inverted index (the newest)
ALIKE = 20  # of those, the incidents sharing the most words are scored
WIDE = 200  # more keys than this, with a time bound: read by time, filter by name
MAX_TERMS = 256  # words an incident keeps in the inverted index
TERM_LENGTH = 64  # longer words are cut (the column's width)


@dataclass
class CandidateIndex:
    """Lookups of one correlation batch; `terms` caches each incident's indexed words."""

    session: Session
    now: datetime
    window: timedelta = timedelta(minutes=15)
    terms: dict[int, set[str]] = field(default_factory=dict)

    def by_services(
        self,
        services: Iterable[str],
        *,
        seen_since: datetime | None = None,
        opened_since: datetime | None = None,
        any_age: bool = False,
    ) -> set[int]:
        """Live incidents with an event on one of `services`; with `seen_since`, only an
        event first seen since then; with `opened_since`, only incidents opened since;
        with `any_age`, also incidents not updated within the window."""
        names = sorted(set(services))
        if not names:
            return set()
        if len(names) > WIDE and (seen_since or opened_since):
            return self._recent(set(names), seen_since, opened_since, any_age)
        query = self._live(Event.incident_id, any_age).where(Event.service.in_(names))
        if seen_since is not None:
            query = query.where(Event.first_seen >= seen_since)
        if opened_since is not None:
            query = query.where(Incident.opened_at >= opened_since)
        return self._bounded(query)

    def _recent(
        self,
        names: set[str],
        seen_since: datetime | None,
        opened_since: datetime | None,
        any_age: bool,
    ) -> set[int]:
        """A wide key set (half the estate stands on DNS): read the recent trouble by time
        alone (events(first_seen), incidents(opened_at)), so the database walks the
        recent rows and never the live incidents, then keep what is on those names."""
        if seen_since is not None:
            rows = self.session.execute(
                select(Event.incident_id, Event.service).where(
                    Event.first_seen >= seen_since, Event.incident_id.is_not(None)
                )
            )
            ids = {i for i, service in rows if service in names}
        else:
            ids = set(
                self.session.scalars(select(Incident.id).where(Incident.opened_at >= opened_since))
            )
            rows = self.session.execute(
                select(Event.incident_id, Event.service).where(Event.incident_id.in_(sorted(ids)))
            )
            ids = {i for i, service in rows if service in names}
        if opened_since is not None and seen_since is not None:
            opened = select(Incident.id).where(Incident.opened_at >= opened_since)
            ids &= set(self.session.scalars(opened))
        return self._newest(ids, None if any_age else self.now - self.window)

    def _newest(self, ids: set[int], since: datetime | None) -> set[int]:
        """Of these incidents, the live ones (updated since `since`, when given), at most
        BUCKET, most recently updated first; read by primary key, so the database never
        walks the live incidents."""
        if not ids:
            return set()
        rows = self.session.execute(
            select(Incident.id, Incident.status, Incident.updated_at).where(
                Incident.id.in_(sorted(ids))
            )
        )
        live = {
            i: updated
            for i, status, updated in rows
            if status in LIVE_INCIDENT and (since is None or updated >= since)
        }
        return set(sorted(live, key=lambda i: live[i], reverse=True)[:BUCKET])

    def by_place(self, entity: str | None, host: str | None) -> set[int]:
        """Live incidents with an event on the same entity, or on the same host."""
        found: set[int] = set()
        if entity:
            found |= self._bounded(self._live(Event.incident_id).where(Event.entity == entity))
        if host:
            found |= self._bounded(
                self._live(Event.incident_id).where((Event.host == host) | (Event.service == host))
            )
        return found

    def by_words(self, words: Iterable[str], updated_since: datetime) -> set[int]:
        """Live incidents updated since `updated_since` that share a word with the alert:
        each word's bucket read newest first, TERM_BUCKET deep; of those, the ALIKE
        sharing the most words (similarity needs most words shared)."""
        shared: dict[int, int] = {}
        for word in sorted({w[:TERM_LENGTH] for w in words}):
            for incident_id in self.session.scalars(
                select(IncidentTerm.incident_id)
                .where(IncidentTerm.term == word)
                .order_by(IncidentTerm.incident_id.desc())
                .limit(TERM_BUCKET)
            ):
                shared[incident_id] = shared.get(incident_id, 0) + 1
        live = self._newest(set(shared), updated_since)
        return set(sorted(live, key=lambda i: (-shared[i], -i))[:ALIKE])

    def incidents(self, ids: Iterable[int]) -> list[Incident]:
        """The incidents themselves, by id: from the session's identity map when loaded,
        one query for the rest."""
        wanted = sorted(set(ids))
        loaded = {}
        for i in wanted:  # a batch meets the same incidents again and again: no query
            obj = self.session.identity_map.get(identity_key(Incident, i))
            if obj is not None:
                loaded[i] = obj
        missing = [i for i in wanted if i not in loaded]
        if missing:
            query = select(Incident).where(Incident.id.in_(missing))
            loaded.update((inc.id, inc) for inc in self.session.scalars(query))
        return [loaded[i] for i in wanted if i in loaded]

    def add_words(self, incident_id: int, words: Iterable[str]) -> None:
        """Index the words an alert brings to an incident (up to MAX_TERMS per incident)."""
        known = self._known(incident_id)
        room = MAX_TERMS - len(known)
        new = sorted({w[:TERM_LENGTH] for w in words} - known)[: max(0, room)]
        if new:
            self.session.add_all(IncidentTerm(term=w, incident_id=incident_id) for w in new)
            known.update(new)

    def moved(self, gone: int, into: int) -> None:
        """Incident `gone` was merged into `into`: its words now find `into`."""
        self.session.execute(
            update(IncidentTerm).where(IncidentTerm.incident_id == gone).values(incident_id=into)
        )
        self.terms.pop(gone, None)
        self.terms.pop(into, None)

    def _known(self, incident_id: int) -> set[str]:
        if incident_id not in self.terms:
            query = select(IncidentTerm.term).where(IncidentTerm.incident_id == incident_id)
            self.terms[incident_id] = set(self.session.scalars(query))
        return self.terms[incident_id]

    def _live(self, column: Any, any_age: bool = False) -> Select[Any]:
        query = (
            select(column)
            .join(Incident, Incident.id == Event.incident_id)
            .where(Incident.status.in_(LIVE_INCIDENT))
        )
        return query if any_age else query.where(Incident.updated_at >= self.now - self.window)

    def _bounded(self, query: Select[Any]) -> set[int]:
        ordered = (
            query.group_by(Event.incident_id)
            .order_by(func.max(Incident.updated_at).desc())
            .limit(BUCKET)
        )
        return set(self.session.scalars(ordered))
