"""`baton bench triage` on a small synthetic export (the shared dataset is not needed)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from baton.cli import app
from baton.harness.triage_bench import columns, keyword_accuracy, recombined
from baton.triage.dataset import Example
from tests.triage.synthetic import tickets, to_csv


def test_bench_reports_quality_baselines_and_speed(tmp_path, monkeypatch):
    monkeypatch.delenv("BATON_TRIAGE_TEXT", raising=False)
    monkeypatch.delenv("BATON_TRIAGE_LABEL", raising=False)
    (tmp_path / "tickets.csv").write_text(to_csv(tickets(per_class=15)) + "x,y,\n")
    result = CliRunner().invoke(
        app,
        ["bench", "triage", "--json", "--data", str(tmp_path), "--seeds", "42,7", "--size", "300"],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["label"] == "category" and figures["text_columns"] == ["subject", "body"]
    assert figures["load"]["dropped"] == {"empty_label": 1}
    assert set(figures["seeds"]) == {"42", "7"}
    for seed in figures["seeds"].values():
        assert seed["accuracy"] > 0.9 and seed["majority_accuracy"] == 0.25
        # two of the four synthetic classes are also keyword categories
        assert 0.0 < seed["keyword_accuracy"] <= 0.5
    assert figures["predict_per_s"] > 0 and figures["train_seconds_300"] > 0


def test_columns_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "tickets.csv"
    path.write_text("\ufeffid,title,queue,site\n1,a,b,c\n")
    monkeypatch.setenv("BATON_TRIAGE_TEXT", "title")
    monkeypatch.setenv("BATON_TRIAGE_LABEL", "queue")
    assert columns(path) == (["title"], "queue")
    monkeypatch.delenv("BATON_TRIAGE_TEXT")
    monkeypatch.delenv("BATON_TRIAGE_LABEL")
    assert columns(path) == (["id", "title", "queue"], "site")


def test_keyword_baseline_only_where_names_match():
    rows = [Example({"body": "fax"}, "Telephony")]
    assert keyword_accuracy(rows, ["body"]) is None
    grown = recombined(tickets(per_class=3), 20, seed=1)
    assert len(grown) == 20 and {e.label for e in grown} <= {
        "access",
        "hardware",
        "storage",
        "purchase",
    }
