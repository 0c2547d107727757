"""Reading a ticket export: any CSV, with the mess real exports carry, said out loud.

Helpdesk exports come with a byte-order mark, quoted text spanning lines, labels that
are blank, stray whitespace and classes seen once. None of that may crash training or
be dropped silently: every row that is left out is counted under its reason, and the
report travels with the model and into the CLI's output.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton.kernel.errors import Invalid

# A ticket body may be long; the csv module's 128 KiB default would reject it.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

MAX_TEXT = 20_000  # characters kept per example: enough to classify, bounded in memory


@dataclass(frozen=True)
class Example:
    """One ticket as a model sees it: named text/structured fields and its label."""

    fields: dict[str, str]
    label: str


@dataclass
class LoadReport:
    """What reading the file did: kept rows and each reason a row was left out."""

    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    bom: bool = False
    multiline_rows: int = 0
    truncated: int = 0

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "bom": self.bom,
            "multiline_rows": self.multiline_rows,
            "truncated_texts": self.truncated,
        }


def split_columns(spec: str | Sequence[str]) -> list[str]:
    """`"subject, body"` or `["subject", "body"]` -> `["subject", "body"]`."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [p.strip() for p in parts if p.strip()]
    if not names:
        raise Invalid("name at least one column", "text")
    return names


def read_csv(
    path: Path, text_columns: Sequence[str], label: str, field_columns: Sequence[str] = ()
) -> tuple[list[Example], LoadReport]:
    """Examples from a CSV file; missing columns are an error that names them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror or exc}", "csv") from None
    return parse_csv(raw, text_columns, label, field_columns)


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without a BOM), else Windows-1252, which every byte decodes in."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_csv(
    raw: bytes, text_columns: Sequence[str], label: str, field_columns: Sequence[str] = ()
) -> tuple[list[Example], LoadReport]:
    report = LoadReport(bom=raw.startswith(b"\xef\xbb\xbf"))
    text = _decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise Invalid("the file is empty (no header row)", "csv")
    names = [h.strip() for h in header]
    if label in text_columns or label in field_columns:
        raise Invalid(f"the label column {label!r} cannot also be a feature", "label")
    wanted = [*text_columns, *field_columns, label]
    missing = [c for c in dict.fromkeys(wanted) if c not in names]
    if missing:
        raise Invalid(
            f"column(s) {', '.join(repr(c) for c in missing)} not in the header "
            f"(columns: {', '.join(repr(n) for n in names)})",
            "csv",
        )
    index = {n: names.index(n) for n in wanted}
    examples: list[Example] = []
    last_line = reader.line_num
    for row in reader:
        lines = reader.line_num - last_line
        last_line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a row
        report.rows += 1
        if lines > 1:
            report.multiline_rows += 1
        if len(row) < len(names):
            row = row + [""] * (len(names) - len(row))  # trailing cells left off
        value = row[index[label]].strip()
        if not value:
            report.drop("empty_label")
            continue
        fields = {c: _clean(row[index[c]], report) for c in (*text_columns, *field_columns)}
        if not any(fields[c] for c in text_columns):
            report.drop("empty_text")
            continue
        examples.append(Example(fields, value))
    report.kept = len(examples)
    return examples, report


def _clean(value: str, report: LoadReport) -> str:
    value = value.strip()
    if len(value) > MAX_TEXT:
        report.truncated += 1
        value = value[:MAX_TEXT]
    return value


def class_counts(labels: Iterable[str]) -> dict[str, int]:
    return dict(Counter(labels).most_common())
