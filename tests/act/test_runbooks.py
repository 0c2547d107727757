"""Runbook documents: the starter catalogue, validation errors and safe parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from baton.act.runbook import (
    ParamError,
    RunbookError,
    load_dir,
    parse,
    render,
    resolve_params,
)
from baton.cli import app

ROOT = Path(__file__).resolve().parents[2]

GOOD = (ROOT / "runbooks" / "restart-service.yaml").read_text()


def test_starter_catalogue_is_valid():
    catalogue = load_dir(ROOT / "runbooks")
    assert not catalogue.errors
    assert len(catalogue.runbooks) >= 12
    for rb in catalogue:
        assert rb.owner and rb.doc.get("verify"), rb.id


def test_version_is_a_content_hash():
    a = parse(GOOD)
    b = parse(GOOD.replace("risk: low", "risk:   low"))  # formatting only
    c = parse(GOOD.replace("risk: low", "risk: medium"))
    assert a.version == b.version != c.version


@pytest.mark.parametrize(
    "edit, line, field",
    [
        (("risk: low", "risk: extreme"), 7, "risk"),
        (("    action: sandbox", "    action: shell"), 20, "steps.0.action"),
        (("owner: team-platform\n", ""), 1, "document: 'owner' is a required property"),
        (
            (
                'with: {remediation: restart, service: "{{ service }}"}',
                'with: {remediation: restart, service: "{{ host }}"}',
            ),
            22,
            "steps.0.with: uses {{ host }}",
        ),
    ],
)
def test_invalid_runbook_names_line_and_field(edit, line, field):
    with pytest.raises(RunbookError) as info:
        parse(GOOD.replace(*edit), "x.yaml")
    assert info.value.line == line
    assert str(info.value).startswith(f"x.yaml:{line}: {field}")


def test_bad_file_does_not_stop_the_others(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n")
    catalogue = load_dir(tmp_path)
    assert list(catalogue.runbooks) == ["restart-service"]
    assert "bad.yaml:" in str(catalogue.errors[0]) and "not valid YAML" in str(catalogue.errors[0])


def test_cli_validate_exit_codes(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["runbooks", "validate", str(ROOT / "runbooks")])
    assert ok.exit_code == 0, ok.output
    (tmp_path / "r.yaml").write_text(GOOD.replace("reversible: false", "reversible: maybe"))
    bad = runner.invoke(app, ["runbooks", "validate", str(tmp_path)])
    assert bad.exit_code == 1
    assert "r.yaml:" in bad.output and "reversible" in bad.output
    missing = runner.invoke(app, ["runbooks", "validate", str(tmp_path / "nope")])
    assert missing.exit_code == 2


@pytest.mark.parametrize(
    "value",
    [
        "web; rm -rf /",
        "a && b",
        "$(id)",
        "`id`",
        "x\ny",
        "x\x00y",
        "'quoted'",
        "-rf",
        "../etc",
        "a" * 300,
        "UPPER",
    ],
)
def test_hostile_values_never_become_params(value):
    rb = parse(GOOD)
    with pytest.raises(ParamError):
        resolve_params(rb, origin_service=value, labels={})


def test_render_keeps_values_whole():
    rendered = render(
        {"argv": ["restart", "{{ service }}"], "msg": "svc={{ service }}"}, {"service": "a b"}
    )
    assert rendered == {"argv": ["restart", "a b"], "msg": "svc=a b"}


def test_label_params_must_be_constrained():
    loose = GOOD.replace(
        "    source: incident.origin_service\n    type: string\n"
        '    pattern: "^[a-z][a-z0-9-]{1,62}$"\n',
        "    source: label:instance\n    type: string\n",
    )
    with pytest.raises(RunbookError, match=r"params\.service"):
        parse(loose)


def test_cli_dry_run_shows_argv_and_masks_secrets(tmp_path, monkeypatch):
    book = tmp_path / "books"
    book.mkdir()
    (book / "call.yaml").write_text(
        GOOD.replace(
            "    action: sandbox\n    idempotent: true  # restarting twice leaves it restarted\n"
            '    with: {remediation: restart, service: "{{ service }}"}',
            '    action: command\n    with: {argv: [curl, -H, "X-Token: {{ secret.TOKEN }}", '
            '"https://{{ service }}/restart"]}',
        )
    )
    monkeypatch.setenv("BATON_RUNBOOKS_DIR", str(book))
    monkeypatch.setenv("BATON_SECRET_TOKEN", "hunter2")
    result = CliRunner().invoke(
        app, ["runbooks", "dry-run", "restart-service", "--param", "service=web-portal"]
    )
    assert result.exit_code == 0, result.output
    argv = json.loads(result.stdout)["dry_run"]["steps"][0]["with"]["argv"]
    assert argv == ["curl", "-H", "X-Token: ***", "https://web-portal/restart"]
    assert "hunter2" not in result.output
