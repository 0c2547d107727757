"""Triage models in the database: versions, the predictions they make, the corrections
technicians give, and retraining from both.

The desk calls `active`, `predict` and `record`; a person's correction goes through
`correct`. Every model action writes an audit record naming the model and its version,
so "who set this priority?" has an answer long after the model was replaced.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from baton.kernel.audit import Actor, append
from baton.kernel.errors import Invalid, NotFound
from baton.store.models import TriageCorrection, TriageModelVersion, TriagePrediction
from baton.triage.dataset import Example
from baton.triage.model import (
    DEFAULT_THRESHOLD,
    Prediction,
    Trained,
    dumps,
    loads,
    train,
)

_CACHE: dict[tuple[str, str], Trained] = {}  # (name, version) -> unpickled model
_CACHE_SIZE = 16


def actor(model: Trained) -> Actor:
    return Actor(f"baton.triage.{model.name}", "ai", model.version)


def _pack(examples: Sequence[Example]) -> bytes:
    return zlib.compress(json.dumps([[e.fields, e.label] for e in examples]).encode(), 6)


def _unpack(blob: bytes) -> list[Example]:
    return [Example(dict(f), str(label)) for f, label in json.loads(zlib.decompress(blob))]


def save(
    session: Session,
    model: Trained,
    examples: Sequence[Example],
    *,
    by: Actor,
    at: datetime,
    notes: Mapping[str, Any] | None = None,
) -> TriageModelVersion:
    """Store a trained model as the active version of its name (older ones stay)."""
    existing = session.scalar(
        select(TriageModelVersion).where(
            TriageModelVersion.name == model.name, TriageModelVersion.version == model.version
        )
    )
    session.execute(
        update(TriageModelVersion).where(TriageModelVersion.name == model.name).values(active=False)
    )
    if existing is not None:  # the same bytes again: reactivate, do not duplicate
        existing.active = True
        row = existing
    else:
        row = TriageModelVersion(
            name=model.name,
            version=model.version,
            label=model.label,
            text_columns=model.text_columns,
            field_columns=model.field_columns,
            threshold=model.threshold,
            blob=dumps(model),
            training=_pack(examples),
            notes={**model.notes, **(notes or {})},
            active=True,
            created_at=at,
            created_by=by.name,
        )
        session.add(row)
    session.flush()
    append(
        session,
        actor=by,
        action="triage.model.trained",
        subject=f"triage-model:{model.name}",
        at=at,
        inputs={
            "label": model.label,
            "text_columns": model.text_columns,
            "field_columns": model.field_columns,
            "rows": len(examples),
        },
        decision=f"version {model.version} active",
        rationale=json.dumps(row.notes, sort_keys=True, default=str)[:2000],
    )
    return row


def _row(session: Session, name: str, version: str | None) -> TriageModelVersion:
    query = select(TriageModelVersion).where(TriageModelVersion.name == name)
    query = (
        query.where(TriageModelVersion.version == version)
        if version
        else query.where(TriageModelVersion.active.is_(True))
    )
    row = session.scalar(query)
    if row is None:
        raise NotFound(
            f"no triage model {name!r}" + (f" version {version}" if version else " (active)")
        )
    return row


def active(session: Session, name: str, version: str | None = None) -> Trained:
    """The model to predict with (the active version unless one is named), cached."""
    row = _row(session, name, version)
    key = (row.name, row.version)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = Trained(
            name=row.name,
            text_columns=list(row.text_columns),
            field_columns=list(row.field_columns),
            label=row.label,
            pipeline=loads(row.blob, row.version),
            threshold=row.threshold,
            version=row.version,
            notes=dict(row.notes),
        )
    model = _CACHE[key]
    model.threshold = row.threshold  # a person may have moved the bar since it was cached
    return model


def set_threshold(
    session: Session, name: str, threshold: float, *, by: Actor, at: datetime
) -> TriageModelVersion:
    """Move the active version's auto-apply bar (the model itself is unchanged)."""
    if not 0.0 < threshold <= 1.0:
        raise Invalid("must be in (0, 1]", "threshold")
    row = _row(session, name, None)
    before, row.threshold = row.threshold, threshold
    append(
        session,
        actor=by,
        action="triage.threshold.set",
        subject=f"triage-model:{name}",
        at=at,
        inputs={"version": row.version, "before": before},
        decision=f"threshold {threshold}",
        rationale="auto-apply at or above this calibrated confidence; suggest below it",
    )
    return row


def versions(session: Session, name: str | None = None) -> list[TriageModelVersion]:
    query = select(TriageModelVersion).order_by(TriageModelVersion.id)
    if name:
        query = query.where(TriageModelVersion.name == name)
    return list(session.scalars(query))


def record(
    session: Session,
    model: Trained,
    subject: str,
    prediction: Prediction,
    *,
    at: datetime,
    applied: bool | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> TriagePrediction:
    """Keep a prediction with the version that made it, and audit it as an AI action.

    `applied` defaults to the model's own rule (confidence at or above its threshold);
    the caller that sets the field (the desk) passes what it actually did.
    """
    applied = prediction.applies(model.threshold) if applied is None else applied
    row = TriagePrediction(
        model_name=model.name,
        model_version=prediction.model_version,
        subject=subject,
        value=prediction.value,
        confidence=prediction.confidence,
        top3=[[v, p] for v, p in prediction.top3],
        applied=applied,
        at=at,
    )
    session.add(row)
    session.flush()
    shown = ", ".join(f"{v} {p:.2f}" for v, p in prediction.top3) or "no allowed value"
    append(
        session,
        actor=actor(model),
        action="triage.predicted",
        subject=subject,
        at=at,
        inputs={"model": model.name, "field": model.label, **dict(inputs or {})},
        decision=(
            f"{model.label}={prediction.value} applied"
            if applied
            else f"{model.label}: suggested {shown}"
        ),
        rationale=f"calibrated confidence {prediction.confidence:.3f} against threshold "
        f"{model.threshold:.2f}; top three: {shown}",
    )
    return row


def correct(
    session: Session,
    name: str,
    subject: str,
    fields: Mapping[str, str],
    value: str,
    *,
    by: Actor,
    at: datetime,
    prediction_id: int | None = None,
) -> TriageCorrection:
    """A technician's value for a subject's field; the next retrain learns from it."""
    value = value.strip()
    if not value:
        raise Invalid("a correction needs a value", "value")
    model_row = _row(session, name, None)
    predicted = None
    if prediction_id is not None:
        prediction = session.get(TriagePrediction, prediction_id)
        if prediction is None or prediction.subject != subject:
            raise NotFound(f"no prediction {prediction_id} for {subject}")
        predicted = prediction.value
    missing = [c for c in model_row.text_columns if c not in fields]
    if missing:
        raise Invalid(f"the correction lacks the model's text column(s) {missing}", "fields")
    row = TriageCorrection(
        model_name=name,
        subject=subject,
        fields={k: str(v) for k, v in fields.items()},
        predicted=predicted,
        value=value,
        prediction_id=prediction_id,
        by=by.name,
        at=at,
    )
    session.add(row)
    session.flush()
    append(
        session,
        actor=by,
        action="triage.corrected",
        subject=subject,
        at=at,
        inputs={"model": name, "field": model_row.label, "predicted": predicted},
        decision=f"{model_row.label}={value}",
        rationale="technician's correction, kept for the next retrain",
    )
    return row


def retrain(
    session: Session, name: str, *, by: Actor, at: datetime, seed: int = 0
) -> dict[str, Any]:
    """A new version from the active one's rows plus every correction (latest per
    subject), activated; the corrections are marked with the version that learned them."""
    row = _row(session, name, None)
    base = _unpack(row.training)
    corrections = list(
        session.scalars(
            select(TriageCorrection)
            .where(TriageCorrection.model_name == name)
            .order_by(TriageCorrection.id)
        )
    )
    latest: dict[str, TriageCorrection] = {c.subject: c for c in corrections}
    corrected = [Example(dict(c.fields), c.value) for c in latest.values()]
    examples = [*base, *corrected]
    model = train(
        name,
        examples,
        text_columns=row.text_columns,
        field_columns=row.field_columns,
        label=row.label,
        threshold=row.threshold or DEFAULT_THRESHOLD,
        seed=seed,
    )
    previous = row.version
    saved = save(
        session,
        model,
        examples,
        by=by,
        at=at,
        notes={
            "retrained_from": previous,
            "corrections_used": len(corrected),
            "load": row.notes.get("load", {}),
        },
    )
    for c in corrections:
        c.learned_in = model.version
    return {
        "name": name,
        "previous_version": previous,
        "version": saved.version,
        "rows": len(examples),
        "corrections_used": len(corrected),
        "corrections_superseded": len(corrections) - len(corrected),
    }
