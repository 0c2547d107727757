"""`baton triage` on any CSV, as a user runs it: messy exports are handled and said so."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from baton.cli import app
from tests.triage.synthetic import tickets, to_csv


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BATON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    monkeypatch.delenv("BATON_CONFIG", raising=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def messy(env):
    """A BOM, a multi-line quoted body, an empty label and a class seen once."""
    text = to_csv(tickets(per_class=12))
    text += 'printer,"paper jam\nsecond line\nthird",hardware\n'
    text += "lost,forgot my password,\n"
    text += "fax,the fax eats paper,fax\n"
    path = env / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return path


def test_evaluate_prints_figures_and_what_it_dropped(messy):
    result = run(
        "triage",
        "evaluate",
        "--csv",
        str(messy),
        "--text",
        "subject,body",
        "--label",
        "category",
        "--test-size",
        "0.2",
        "--seed",
        "42",
        "--json",
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["load"]["bom"] is True and figures["load"]["multiline_rows"] == 1
    assert figures["load"]["dropped"] == {"empty_label": 1}
    assert figures["singleton_classes_train_only"] == ["fax"]
    assert figures["rare_classes_left_out"] == {"fax": 1}
    assert figures["stratified"] is True and figures["accuracy"] > 0.8
    assert {"macro_f1", "weighted_f1", "per_class", "at_threshold", "curve"} <= set(figures)
    assert "1 empty_label" in result.stderr and "fax (1)" in result.stderr


def test_missing_columns_are_named(messy):
    result = run(
        "triage",
        "evaluate",
        "--csv",
        str(messy),
        "--text",
        "subject,description",
        "--label",
        "category",
    )
    assert result.exit_code == 2
    assert "'description'" in result.stderr and result.stdout == ""


def test_train_predict_retrain_and_list(messy):
    trained = run(
        "triage",
        "train",
        "--csv",
        str(messy),
        "--text",
        "subject,body",
        "--label",
        "category",
        "--name",
        "category",
        "--as",
        "tia",
        "--json",
    )
    assert trained.exit_code == 0, trained.output
    model = json.loads(trained.stdout)
    assert model["active"] and model["load"]["dropped"] == {"empty_label": 1}
    assert model["rare_classes_left_out"] == {"fax": 1}

    said = run(
        "triage",
        "predict",
        "--name",
        "category",
        "-f",
        "subject=disk",
        "-f",
        "body=disk quota full",
        "--allowed",
        "storage,access",
    )
    answer = json.loads(said.stdout)
    assert answer["value"] == "storage" and answer["model_version"] == model["version"]

    again = run("triage", "retrain", "--name", "category", "--json")
    assert again.exit_code == 0, again.output
    retrained = json.loads(again.stdout)
    assert retrained["previous_version"] == model["version"] and retrained["rows"] == 50

    moved = run("triage", "threshold", "--name", "category", "0.9", "--as", "lee")
    assert moved.exit_code == 0 and "threshold 0.9" in moved.stdout
    assert run("triage", "threshold", "--name", "category", "2").exit_code == 2

    listed = json.loads(run("triage", "models", "--json").stdout)
    assert [m["version"] for m in listed if m["active"]] == [retrained["version"]]
    assert [m["threshold"] for m in listed if m["active"]] == [0.9]
    missing = run("triage", "retrain", "--name", "nope")
    assert missing.exit_code == 2 and "nope" in missing.stderr
