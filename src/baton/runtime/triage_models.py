"""The trained triage models behind the desk's predictor seam.

For each desk field (category, priority, group) whose model has been trained under that
name (`baton triage train --name category ...`), the active version predicts, choosing
only among the field's enabled options, against the threshold stored with it; fields
without a model keep the keyword classifier's guess. Each trained prediction is kept in
`triage_predictions` with the ticket and the model version (`record_predictions`), and a
technician's change of such a field is kept as a correction the next `baton triage
retrain` learns from (`learn_from_change`). Nothing is imported from scikit-learn until
a model exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor
from baton.servicedesk import options
from baton.servicedesk.seam import Prediction
from baton.servicedesk.tickets import Predictor
from baton.store.models import Ticket, TriageModelVersion, TriagePrediction

Keywords = Callable[[str, str], dict[str, Prediction]]
PREFIX = "baton.triage."  # a trained model's actor name: baton.triage.<field>


def ticket_fields(text_columns: list[str], subject: str, body: str) -> dict[str, str]:
    """A new ticket as the model's columns: `subject`/`body` (any case) by name, and the
    whole text for a column with another name (an export's `description`, `Document`)."""
    whole = f"{subject}\n{body}"
    named: Mapping[str, str] = {"subject": subject, "title": subject, "body": body}
    return {c: named.get(c.strip().lower(), whole) for c in text_columns}


def trained_predictor(fallback: Keywords) -> Predictor:
    """The active model of each desk field where one exists, else `fallback`'s guess; in
    the filing transaction (a second connection would wait on the ticket's own lock)."""

    def predict(s: Session, subject: str, body: str) -> dict[str, Prediction]:
        out = fallback(subject, body)
        names = set(
            s.scalars(
                select(TriageModelVersion.name).where(
                    TriageModelVersion.active.is_(True),
                    TriageModelVersion.name.in_(options.FIELDS),
                )
            )
        )
        if not names:
            return out
        from baton.triage import registry
        from baton.triage.model import predict as model_predict

        for field in sorted(names):
            model = registry.active(s, field)
            allowed = set(options.enabled(s, field))
            fields = ticket_fields(model.text_columns, subject, body)
            p = model_predict(model, fields, allowed)
            if p.value is not None:
                out[field] = Prediction(
                    p.value,
                    p.confidence,
                    f"{PREFIX}{field}",
                    p.model_version,
                    p.top3,
                    model.threshold,
                )
        return out

    return predict


def record_predictions(
    session: Session,
    ticket: Ticket,
    predictions: dict[str, Prediction],
    outcome: dict[str, str],
    at: datetime,
) -> None:
    """Keep each trained model's prediction for this ticket, with what the desk did."""
    trained = {f: p for f, p in predictions.items() if p.model == f"{PREFIX}{f}"}
    if not trained:
        return
    from baton.triage import registry
    from baton.triage.model import Prediction as Predicted

    for field, p in sorted(trained.items()):
        model = registry.active(session, field, p.version)
        registry.record(
            session,
            model,
            f"ticket:{ticket.id}",
            Predicted(p.value, p.confidence, list(p.top), p.version),
            at=at,
            applied=outcome.get(field) == "applied",
            inputs={"ticket": ticket.id},
        )


def learn_from_change(
    session: Session, ticket: Ticket, field: str, value: str | None, by: Actor, at: datetime
) -> int | None:
    """A person's value for a field a trained model covers becomes a correction (the id),
    linked to the model's last prediction for the ticket; None when no model covers it."""
    if by.kind != "human" or field not in options.FIELDS or not value:
        return None
    row = session.scalar(
        select(TriageModelVersion).where(
            TriageModelVersion.name == field, TriageModelVersion.active.is_(True)
        )
    )
    if row is None:
        return None
    from baton.triage import registry

    subject = f"ticket:{ticket.id}"
    prediction = session.scalar(
        select(TriagePrediction.id)
        .where(TriagePrediction.model_name == field, TriagePrediction.subject == subject)
        .order_by(TriagePrediction.id.desc())
        .limit(1)
    )
    fields = ticket_fields(list(row.text_columns), ticket.subject, ticket.body)
    fields.update({c: str(getattr(ticket, c, "") or "") for c in row.field_columns})
    return registry.correct(
        session, field, subject, fields, value, by=by, at=at, prediction_id=prediction
    ).id
