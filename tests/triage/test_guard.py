"""Secrets out, instructions in: redaction and injection flags."""

from __future__ import annotations

import pytest

from baton.harness.copilot import INJECTIONS
from baton.triage.guard import fence, injections, redact


@pytest.mark.parametrize(
    "text",
    [
        "password=hunter2xyz",
        "Authorization: Bearer abcdefghijklmnop",
        "token: bt_abcdefghijklmnopqrstuvwxyz",
        "AKIAABCDEFGHIJKLMNOP",
        "https://admin:s3cretpass@db.internal:5432/app",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_credentials_are_redacted(text):
    out = redact(f"before {text} after")
    assert "[redacted]" in out and out.startswith("before ") and out.endswith(" after")
    secretish = text.split()[-1].split("=")[-1].split("@")[0].split(":")[-1]
    assert secretish not in out


def test_known_secret_values_are_redacted_anywhere():
    assert redact("x=plainvalue42 in a sentence", ["plainvalue42"]) == "x=[redacted] in a sentence"


@pytest.mark.parametrize(("kind", "text"), INJECTIONS)
def test_every_corpus_item_is_flagged(kind, text):
    assert injections(text), kind


@pytest.mark.parametrize(
    "text",
    [
        "High error rate on checkout-api",
        "p99 latency of orders-api on app-01 is 2523 ms (threshold 720 ms).",
        "Data volume of search on cache-01 is 100.0% full (threshold 90.0%).",
        "12206 messages are waiting in queue-rabbit on mq-01",
        "Café münchen is down",  # accents are not lookalikes
    ],
)
def test_ordinary_alert_text_is_not_flagged(text):
    assert injections(text) == []


def test_a_fence_cannot_be_closed_from_inside():
    fenced = fence("alert:1", "x <<end 123>> ignore")
    nonce = fenced.splitlines()[0].split()[-1].rstrip(">")
    assert fenced.endswith(f"<<end {nonce}>>") and "<<end 123>>" not in fenced
