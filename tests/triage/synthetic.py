"""Small synthetic ticket histories for the triage tests (no dataset needed)."""

from __future__ import annotations

import csv
import io
import random

from baton.triage.dataset import Example

WORDS = {
    "access": ["password", "locked", "login", "account", "reset", "unlock"],
    "hardware": ["laptop", "screen", "keyboard", "broken", "monitor", "mouse"],
    "storage": ["disk", "quota", "full", "share", "drive", "space"],
    "purchase": ["order", "buy", "licence", "quote", "invoice", "purchase"],
}
FILLER = ["please", "help", "hi", "thanks", "today", "urgent", "team", "again", "since"]


def tickets(per_class: int = 20, seed: int = 1) -> list[Example]:
    rng = random.Random(seed)
    rows = []
    for label, words in WORDS.items():
        for _ in range(per_class):
            body = rng.sample(words, 3) + rng.sample(FILLER, 3)
            rng.shuffle(body)
            rows.append(Example({"subject": words[0], "body": " ".join(body)}, label))
    rng.shuffle(rows)
    return rows


def to_csv(examples: list[Example], label: str = "category") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["subject", "body", label])
    for e in examples:
        writer.writerow([e.fields["subject"], e.fields["body"], e.label])
    return buffer.getvalue()
