"""`baton triage ...`: train, evaluate, retrain and try triage models on any CSV export.

`evaluate` needs no database; the others store model versions (and read corrections)
in Baton's database, opened by the function `register` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from baton.kernel.errors import Invalid, NotFound

if TYPE_CHECKING:
    from datetime import datetime

    from baton.kernel.audit import Actor

triage_app = typer.Typer(
    help="Triage models (category, priority, group) trained on your own tickets.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_OPENERS: dict[str, Callable[[], Any]] = {}

CsvOpt = Annotated[Path, typer.Option("--csv", help="The export (UTF-8, a BOM is fine).")]
TextOpt = Annotated[
    str, typer.Option("--text", help="Text column(s), comma-separated, e.g. subject,body.")
]
LabelOpt = Annotated[str, typer.Option("--label", help="The column to predict.")]
FieldsOpt = Annotated[
    str,
    typer.Option("--fields", help="Structured columns used as features (e.g. channel,site)."),
]
ThresholdOpt = Annotated[
    float, typer.Option("--threshold", help="Auto-apply at or above this confidence.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (stdout only).")]
AsOpt = Annotated[str | None, typer.Option("--as", help="Who is acting, for the ledger.")]


def register(app: typer.Typer, open_database: Callable[[], Any]) -> None:
    """Add `baton triage` to the CLI; `open_database()` gives a migrated Database."""
    _OPENERS["db"] = open_database
    app.add_typer(triage_app, name="triage")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


def _dump(data: Any) -> None:
    print(orjson.dumps(data, default=str).decode())


def _load(csv: Path, text: str, label: str, fields: str) -> tuple[list[Any], dict[str, Any], Any]:
    from baton.triage.dataset import read_csv, split_columns

    text_columns = split_columns(text)
    field_columns = split_columns(fields) if fields.strip() else []
    examples, report = read_csv(csv, text_columns, label.strip(), field_columns)
    return examples, report.to_dict(), (text_columns, field_columns)


def _say_load(load: dict[str, Any]) -> None:
    """What reading the file did, on stderr, so a person sees it even with --json."""
    dropped = ", ".join(f"{n} {why}" for why, n in load["dropped"].items()) or "none"
    err.print(
        f"read {load['rows']} rows, kept {load['kept']}; dropped: {dropped}"
        + ("; file had a UTF-8 BOM" if load["bom"] else "")
        + (f"; {load['multiline_rows']} rows span several lines" if load["multiline_rows"] else "")
        + (f"; {load['truncated_texts']} texts truncated" if load["truncated_texts"] else ""),
        markup=False,
        highlight=False,
    )


def _say_rare(rare: dict[str, int]) -> None:
    if rare:
        listed = ", ".join(f"{k} ({v})" for k, v in rare.items())
        err.print(f"left out (too few rows to learn): {listed}", markup=False, highlight=False)


@triage_app.command("evaluate")
def evaluate_cmd(
    csv: CsvOpt,
    text: TextOpt,
    label: LabelOpt,
    fields: FieldsOpt = "",
    test_size: Annotated[float, typer.Option("--test-size")] = 0.2,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    threshold: ThresholdOpt = 0.8,
    as_json: JsonOpt = False,
) -> None:
    """Train on a stratified part of CSV, score the rest: accuracy, F1, per class,
    coverage and accuracy at the auto-apply threshold."""
    from baton.triage.evaluate import evaluate

    try:
        examples, load, (text_columns, field_columns) = _load(csv, text, label, fields)
        result = evaluate(
            examples,
            text_columns=text_columns,
            field_columns=field_columns,
            test_size=test_size,
            seed=seed,
            threshold=threshold,
        )
    except Invalid as exc:
        raise _fail(str(exc)) from None
    result = {"csv": str(csv), "load": load, **result}
    _say_load(load)
    _say_rare(result["rare_classes_left_out"])
    if result["singleton_classes_train_only"]:
        err.print(
            f"classes with one row (train only): {result['singleton_classes_train_only']}",
            markup=False,
            highlight=False,
        )
    if as_json:
        _dump(result)
        return
    table = Table("class", "precision", "recall", "f1", "support", title="per class")
    for name, row in result["per_class"].items():
        table.add_row(
            escape(name),
            *(str(row[k]) for k in ("precision", "recall", "f1-score", "support")),
        )
    out.print(table)
    at = result["at_threshold"]
    out.print(
        f"accuracy {result['accuracy']}  macro-F1 {result['macro_f1']}  weighted-F1 "
        f"{result['weighted_f1']}  (majority class {result['majority_accuracy']}); at "
        f"threshold {at['threshold']}: coverage {at['coverage']}, accuracy {at['accuracy']}",
        highlight=False,
    )


@triage_app.command("train")
def train_cmd(
    csv: CsvOpt,
    text: TextOpt,
    label: LabelOpt,
    name: Annotated[str, typer.Option("--name", help="Model name, e.g. category.")],
    fields: FieldsOpt = "",
    threshold: ThresholdOpt = 0.8,
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a model on every usable row of CSV and store it as NAME's active version."""
    from baton.triage.model import train
    from baton.triage.registry import save

    try:
        examples, load, (text_columns, field_columns) = _load(csv, text, label, fields)
        model = train(
            name.strip(),
            examples,
            text_columns=text_columns,
            field_columns=field_columns,
            label=label.strip(),
            threshold=threshold,
        )
    except Invalid as exc:
        raise _fail(str(exc)) from None
    _say_load(load)
    _say_rare(model.notes["rare_classes_left_out"])
    with _OPENERS["db"]().session() as session:
        row = save(
            session,
            model,
            examples,
            by=_person(as_),
            at=_now(),
            notes={"load": load, "csv": csv.name},
        )
        summary = _summary(row)
    if as_json:
        _dump(summary)
        return
    out.print(
        f"model {escape(name)} version {summary['version']}: {summary['trained_rows']} rows, "
        f"{len(summary['classes'])} classes, threshold {summary['threshold']}",
        highlight=False,
    )


@triage_app.command("retrain")
def retrain_cmd(
    name: Annotated[str, typer.Option("--name", help="The model to retrain.")],
    as_: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A new version of NAME from its training rows plus technicians' corrections."""
    from baton.triage.registry import retrain

    try:
        with _OPENERS["db"]().session() as session:
            result = retrain(session, name, by=_person(as_), at=_now())
    except (Invalid, NotFound) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _dump(result)
        return
    out.print(
        f"model {escape(name)}: {result['previous_version']} -> {result['version']} "
        f"({result['rows']} rows, {result['corrections_used']} corrections)",
        highlight=False,
    )


@triage_app.command("threshold")
def threshold_cmd(
    name: Annotated[str, typer.Option("--name", help="The model.")],
    value: Annotated[float, typer.Argument(help="Auto-apply at or above this confidence.")],
    as_: AsOpt = None,
) -> None:
    """Move NAME's auto-apply bar (below it the desk only suggests the top three)."""
    from baton.triage.registry import set_threshold

    try:
        with _OPENERS["db"]().session() as session:
            row = set_threshold(session, name, value, by=_person(as_), at=_now())
            version = row.version
    except (Invalid, NotFound) as exc:
        raise _fail(str(exc)) from None
    out.print(f"model {escape(name)} ({version}): threshold {value}", highlight=False)


@triage_app.command("predict")
def predict_cmd(
    name: Annotated[str, typer.Option("--name", help="The model.")],
    field: Annotated[
        list[str], typer.Option("--field", "-f", help="COLUMN=VALUE, once per column.")
    ],
    allowed: Annotated[
        str, typer.Option("--allowed", help="Values that exist and are enabled (comma list).")
    ] = "",
) -> None:
    """Try a model on one ticket (nothing is recorded): JSON with value and top three."""
    from baton.triage.model import predict
    from baton.triage.registry import active

    values = dict(f.split("=", 1) if "=" in f else (f, "") for f in field)
    offered = {v.strip() for v in allowed.split(",") if v.strip()} or None
    try:
        with _OPENERS["db"]().session() as session:
            model = active(session, name)
    except (Invalid, NotFound) as exc:
        raise _fail(str(exc)) from None
    prediction = predict(model, values, offered)
    _dump({**prediction.to_dict(), "applies": prediction.applies(model.threshold)})


@triage_app.command("models")
def models_cmd(as_json: JsonOpt = False) -> None:
    """Every stored model version, the active one of each name marked."""
    from baton.triage.registry import versions

    with _OPENERS["db"]().session() as session:
        rows = [_summary(r) for r in versions(session)]
    if as_json:
        _dump(rows)
        return
    table = Table("name", "version", "active", "label", "rows", "threshold", "created")
    for r in rows:
        table.add_row(
            escape(r["name"]),
            r["version"],
            "yes" if r["active"] else "",
            escape(r["label"]),
            str(r["trained_rows"]),
            str(r["threshold"]),
            str(r["created_at"]),
        )
    out.print(table)


def _now() -> datetime:
    from baton.kernel.clock import default_clock  # pydantic loads only when needed

    return default_clock().now()


def _person(name: str | None) -> Actor:
    import getpass

    from baton.kernel.audit import Actor

    return Actor(name or getpass.getuser(), "human")


def _summary(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "active": row.active,
        "label": row.label,
        "text_columns": row.text_columns,
        "field_columns": row.field_columns,
        "threshold": row.threshold,
        "trained_rows": row.notes.get("trained_rows"),
        "classes": row.notes.get("classes", {}),
        "rare_classes_left_out": row.notes.get("rare_classes_left_out", {}),
        "load": row.notes.get("load"),
        "created_at": row.created_at,
        "created_by": row.created_by,
    }
