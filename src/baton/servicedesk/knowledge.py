"""Knowledge: Markdown articles in a directory, and answers suggested from them.

Articles are files (`<slug>.md`, title from the first `# ` heading) so they can live in
git and be reviewed like runbooks; the API writes the same files. For a ticket, TF-IDF
cosine similarity ranks the articles and the past resolved tickets that look like it.
A suggested answer becomes a draft that goes to the requester only once an agent
approves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel
from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.enums import TicketStatus as S
from baton.kernel.errors import Invalid, NotFound, Refused
from baton.servicedesk import lifecycle
from baton.store.models import AnswerDraft, Ticket

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MIN_SCORE = 0.1  # below this an article does not answer the ticket
PAST = 2000  # resolved tickets compared against, newest first


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "body": self.body}


def _parse(slug: str, text: str) -> Article:
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), slug)
    return Article(slug, title, text)


def articles(kb_dir: Path) -> list[Article]:
    if not kb_dir.is_dir():
        return []
    return [_parse(p.stem, p.read_text(encoding="utf-8")) for p in sorted(kb_dir.glob("*.md"))]


def article(kb_dir: Path, slug: str) -> Article:
    path = kb_dir / f"{slug}.md"
    if not SLUG.match(slug) or not path.is_file():
        raise NotFound(f"no article {slug!r}")
    return _parse(slug, path.read_text(encoding="utf-8"))


def write_article(kb_dir: Path, slug: str, title: str, body: str) -> Article:
    """Create or replace an article file (the slug is checked: no paths)."""
    if not SLUG.match(slug):
        raise Invalid("slug: lowercase letters, digits and dashes, up to 64", "slug")
    title = " ".join(title.split())
    if not title:
        raise Invalid("an article needs a title", "title")
    kb_dir.mkdir(parents=True, exist_ok=True)
    text = f"# {title}\n\n{body.strip()}\n"
    (kb_dir / f"{slug}.md").write_text(text, encoding="utf-8")
    return _parse(slug, text)


def _rank(query: str, docs: list[str], limit: int) -> list[tuple[int, float]]:
    if not docs or not query.strip():
        return []
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, ngram_range=(1, 2))
    try:
        matrix = vectorizer.fit_transform([*docs, query])
    except ValueError:  # nothing but stop words
        return []
    scores = linear_kernel(matrix[-1], matrix[:-1]).ravel()
    best = scores.argsort()[::-1][:limit]
    return [(int(i), float(scores[i])) for i in best if scores[i] >= MIN_SCORE]


def _query(ticket: Ticket) -> str:
    return f"{ticket.subject}\n{ticket.body}"


def matching_articles(ticket: Ticket, kb_dir: Path, limit: int = 3) -> list[dict[str, Any]]:
    """The articles that may answer the ticket, best first."""
    found = articles(kb_dir)
    ranked = _rank(_query(ticket), [f"{a.title}\n{a.body}" for a in found], limit)
    return [
        {"slug": found[i].slug, "title": found[i].title, "score": round(s, 3)} for i, s in ranked
    ]


def similar_tickets(session: Session, ticket: Ticket, limit: int = 3) -> list[dict[str, Any]]:
    """The most similar resolved tickets, with how each was resolved."""
    past = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.status.in_((S.RESOLVED, S.CLOSED)), Ticket.id != ticket.id)
            .order_by(Ticket.id.desc())
            .limit(PAST)
        )
    )
    ranked = _rank(_query(ticket), [f"{t.subject}\n{t.body}" for t in past], limit)
    return [
        {
            "ticket": past[i].id,
            "subject": past[i].subject,
            "score": round(s, 3),
            "resolution": _resolution(session, past[i].id),
        }
        for i, s in ranked
    ]


def suggest(session: Session, ticket: Ticket, kb_dir: Path, limit: int = 3) -> dict[str, Any]:
    """The articles that may answer the ticket and the most similar resolved tickets."""
    return {
        "articles": matching_articles(ticket, kb_dir, limit),
        "similar": similar_tickets(session, ticket, limit),
    }


def _resolution(session: Session, ticket_id: int) -> str | None:
    notes = [c for c in lifecycle.comments(session, ticket_id) if c.public]
    return notes[-1].body[:500] if notes else None


def draft_answer(
    session: Session, ticket: Ticket, kb_dir: Path, at: datetime, actor: Actor
) -> AnswerDraft | None:
    """A pending answer from the best article, for an agent to approve (None if none fits)."""
    best = matching_articles(ticket, kb_dir, limit=1)
    if not best:
        return None
    art = article(kb_dir, best[0]["slug"])
    draft = AnswerDraft(
        ticket_id=ticket.id,
        article=art.slug,
        body=f"This article may answer your request: {art.title}\n\n{art.body}",
        score=best[0]["score"],
        status="pending",
        created_at=at,
    )
    session.add(draft)
    session.flush()
    append(
        session,
        actor=actor,
        action="answer.drafted",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"article": art.slug, "score": best[0]["score"]},
        decision=f"draft:{draft.id} awaits an agent",
    )
    return draft


def send_by_policy(
    session: Session, draft: AnswerDraft, agent: Actor, at: datetime, rule: str
) -> AnswerDraft:
    """The policy lets this category's answers go out on their own: sent as the model's
    public comment, audited with the rule that allowed it."""
    draft.status, draft.decided_by, draft.decided_at = "sent", agent.name, at
    ticket = lifecycle.get(session, draft.ticket_id)
    lifecycle.comment(session, ticket, agent, draft.body, at, public=True)
    append(
        session,
        actor=agent,
        action="answer.auto_sent",
        subject=f"ticket:{ticket.id}",
        at=at,
        inputs={"article": draft.article, "score": draft.score},
        decision="sent",
        rationale=rule,
    )
    return draft


def decide(
    session: Session, draft_id: int, approve: bool, agent: Actor, at: datetime
) -> AnswerDraft:
    """An agent approves (the answer goes out as a public comment) or rejects a draft."""
    draft = session.get(AnswerDraft, draft_id)
    if draft is None:
        raise NotFound(f"no answer draft {draft_id}")
    if draft.status != "pending":
        raise Refused(f"answer draft {draft_id} is already {draft.status}")
    if agent.kind != "human":
        raise Refused("only a person approves an answer to a requester")
    draft.status = "sent" if approve else "rejected"
    draft.decided_by, draft.decided_at = agent.name, at
    ticket = lifecycle.get(session, draft.ticket_id)
    if approve:
        lifecycle.comment(session, ticket, agent, draft.body, at, public=True)
    append(
        session,
        actor=agent,
        action="answer.approved" if approve else "answer.rejected",
        subject=f"ticket:{ticket.id}",
        at=at,
        decision=draft.status,
    )
    return draft


def pending(session: Session, ticket_id: int | None = None) -> list[AnswerDraft]:
    query = select(AnswerDraft).where(AnswerDraft.status == "pending")
    if ticket_id is not None:
        query = query.where(AnswerDraft.ticket_id == ticket_id)
    return list(session.scalars(query.order_by(AnswerDraft.id)))


def draft_dict(d: AnswerDraft) -> dict[str, Any]:
    return {
        "id": d.id,
        "ticket": d.ticket_id,
        "article": d.article,
        "body": d.body,
        "score": d.score,
        "status": d.status,
        "decided_by": d.decided_by,
    }
