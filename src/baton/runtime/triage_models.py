"""The trained triage models behind the desk's predictor seam.

For each desk field (category, priority, group) whose model has been trained under that
name (`baton triage train --name category ...`), the active version predicts, choosing
only among the field's enabled options; fields without a model keep the keyword
classifier's guess. Nothing is imported from scikit-learn until a model exists.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from baton.servicedesk import options
from baton.servicedesk.seam import Prediction
from baton.servicedesk.tickets import Predictor
from baton.store.db import Database
from baton.store.models import TriageModelVersion


def ticket_fields(text_columns: list[str], subject: str, body: str) -> dict[str, str]:
    """A new ticket as the model's columns: `subject`/`body` (any case) by name, and the
    whole text for a column with another name (an export's `description`, `Document`)."""
    whole = f"{subject}\n{body}"
    named: Mapping[str, str] = {"subject": subject, "title": subject, "body": body}
    return {c: named.get(c.strip().lower(), whole) for c in text_columns}


def trained_predictor(db: Database, fallback: Predictor) -> Predictor:
    def predict(subject: str, body: str) -> dict[str, Prediction]:
        out = fallback(subject, body)
        with db.session() as s:
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
                        p.value, p.confidence, f"baton.triage.{field}", p.model_version, p.top3
                    )
        return out

    return predict
