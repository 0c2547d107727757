"""No shell or interpreter by any door: a corpus of the forms a runbook author (or an
attacker editing one) might use to get a param run as code, and the everyday argvs that
must still validate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from baton.act.argv import find_interpreter
from baton.act.runbook import RunbookError, load_dir, parse
from baton.cli import app

ROOT = Path(__file__).resolve().parents[2]
X = "{{ x }}"

# Each runs a shell, or an interpreter with code on its command line, with a param in it.
REFUSED = [
    ["bash", "-lc", f"echo {X}"],
    ["bash", "-ec", f"echo {X}"],
    ["sh", "-xc", f"echo {X}"],
    ["sh", "-c", f"echo {X}"],
    ["/bin/bash", "-c", f"echo {X}"],
    ["bash5.2", "-c", f"echo {X}"],
    ["dash", "-c", X],
    ["zsh", "-c", X],
    ["ksh", "-c", X],
    ["fish", "-c", X],
    ["/usr/bin/env", "sh", "-c", X],
    ["env", "-i", "PATH=/usr/bin", "bash", "-c", X],
    ["env", "-u", "HOME", "--", "sh", "-c", X],
    ["env", "-S", "sh -c 'echo hi'", X],
    ["busybox", "sh", "-c", X],
    ["busybox", "ash", "-c", X],
    ["sudo", "sh", "-c", X],
    ["sudo", "-u", "root", "-E", "bash", "-c", X],
    ["sudo", "-s", X],
    ["sudo", "-i", X],
    ["doas", "-u", "root", "sh", "-c", X],
    ["nice", "sh", "-c", X],
    ["nice", "-n", "10", "sh", "-c", X],
    ["ionice", "-c3", "sh", "-c", X],
    ["timeout", "5", "sh", "-c", X],
    ["timeout", "-k", "2", "5s", "bash", "-c", X],
    ["nohup", "sh", "-c", X],
    ["stdbuf", "-oL", "sh", "-c", X],
    ["setsid", "-w", "sh", "-c", X],
    ["chroot", "/srv/root", "sh", "-c", X],
    ["chroot", "/srv/root"],
    ["xargs", "-0", "sh", "-c", X],
    ["xargs", "-I{}", "sh", "-c", X],
    ["flock", "/run/lock", "sh", "-c", X],
    ["flock", "-x", "/run/lock", "-c", X],
    ["find", "/var/log", "-exec", "sh", "-c", X, ";"],
    ["find", "/var/log", "-name", "*.log", "-execdir", "bash", "-c", X, "{}", "+"],
    ["find", "/var/log", "-ok", "python3", "-c", X, ";"],
    ["ssh", "host", X],
    ["ssh", "-p", "2222", "-i", "/k", "admin@host", "restart", X],
    ["ssh", "-o", "ProxyCommand=nc %h %p", "host"],
    ["su", "-c", X],
    ["su", "-", "app", "-c", X],
    ["runuser", "-l", "app", "-c", X],
    ["script", "-qc", X, "/dev/null"],
    ["watch", "-n", "5", f"df {X}"],
    ["sg", "wheel", X],
    ["python3", "-c", f"print('{X}')"],
    ["python", "-c", X],
    ["python3.11", "-c", X],
    ["/usr/bin/python3.12", "-Ic", X],
    ["python3", "-m", "timeit", X],
    ["pypy3", "-c", X],
    ["perl", "-e", X],
    ["perl", "-E", X],
    ["perl", "-lne", X],
    ["ruby", "-e", X],
    ["node", "-e", X],
    ["node", "--eval", X],
    ["nodejs", "-p", X],
    ["php", "-r", X],
    ["lua", "-e", X],
    ["lua5.4", "-e", X],
    ["tclsh"],
    ["osascript", "-e", X],
    ["pwsh", "-c", X],
    ["pwsh", "-Command", X],
    ["powershell", "-EncodedCommand", X],
    ["Rscript", "-e", X],
    ["awk", f"{{print {X}}}"],
    ["gawk", "-F:", f"{{print {X}}}", "/etc/passwd"],
    ["mawk", "-v", "a=1", X],
    ["gawk", "-e", X],
    ["sed", "s/a/b/e", X],
    ["sed", "-e", "1e date", "-e", "s/x/y/"],
    ["sed", "-n", "s/a/b/w /etc/cron.d/x", "f"],
    ["sed", f"s/a/{X}/", "file"],
    ["expect", "-c", X],
    ["gdb", "-batch", "-ex", X],
    ["vim", "-c", X],
    ["vi", f"+{X}", "f"],
    ["tar", "--to-command", X, "-xf", "a.tar"],
    ["tar", "-xf", "a.tar", "--checkpoint-action=exec=sh -c x"],
    ["docker", "exec", "web", "bash", "-c", X],
    ["kubectl", "exec", "pod", "--", "sh", "-c", X],
    ["ip", "netns", "exec", "blue", "sh", "-c", X],
    ["sudo", "-u", "app", "env", "A=1", "timeout", "5", "nice", "python3", "-c", X],
    ["strace", "-f", "-o", "/tmp/t", "sh", "-c", X],
    ["systemd-run", "--unit", "x", "--", "bash", "-c", X],
    ["start-stop-daemon", "--start", "--startas", "/bin/sh", "--", "-c", X],
    [X, "--version"],
    ["/usr/bin/{{ x }}", "--version"],
    ["sudo", X],
]

# Everyday argvs that must keep validating: programs with arguments, no code.
ALLOWED = [
    ["find", "/var/log", "-xdev", "-type", "f", "-name", "*.log", "-exec", "gzip", "-f", "{}", "+"],
    ["find", "/tmp", "-mtime", "+7", "-delete"],
    ["systemctl", "restart", X],
    ["sudo", "-u", "root", "systemctl", "restart", X],
    ["env", "LC_ALL=C", "systemctl", "status", X],
    ["timeout", "5", "curl", "-fsS", "https://example.internal/health"],
    ["nice", "-n", "5", "gzip", "-9", "/var/log/big.log"],
    ["pkill", "-TERM", "-x", "bash"],
    ["pgrep", "-x", X],
    ["sed", "-i", "s/^max=.*/max=10/", "/etc/app.conf"],
    ["sed", "--sandbox", "-n", "1e date", "f"],
    ["awk", "-f", "/opt/baton/report.awk", "/var/log/app.log"],
    ["python3", "/opt/baton/scripts/rotate.py", "--service", X],
    ["/usr/bin/python3", "-u", "/opt/baton/scripts/rotate.py", X],
    ["perl", "/opt/baton/clean.pl", X],
    ["start-stop-daemon", "--start", "--startas", "/etc/baton/services/{{ x }}"],
    ["/etc/baton/services/{{ x }}", "--check"],
    ["ssh-keygen", "-R", X],
    ["watch", "-x", "df", "-h"],
    ["xargs", "-0", "rm", "-f"],
    ["kubectl", "rollout", "restart", "deployment/web"],
    ["journalctl", "-u", X, "--since", "-1h"],
]


def _doc(argv, **step):
    return {
        "id": "corpus-book",
        "title": "A runbook for the interpreter corpus",
        "owner": "team-test",
        "risk": "low",
        "reversible": False,
        "match": {"alertnames": ["Anything"]},
        "autonomy": {"default": "auto"},
        "params": {"x": {"source": "label:x", "type": "string", "pattern": "^.{1,100}$"}},
        "steps": [{"name": "step", "action": "command", "with": {"argv": argv}, **step}],
    }


def _parse(doc, allow=()):
    return parse(yaml.safe_dump(doc), "corpus.yaml", allow)


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a)[:60])
def test_every_way_to_reach_an_interpreter_is_refused(argv):
    with pytest.raises(RunbookError) as caught:
        _parse(_doc(argv))
    err = caught.value
    # the existing file:line: field: message shape, pointing into the argv
    assert str(err).startswith("corpus.yaml:") and err.line
    assert err.field_path.startswith("steps.0.with.argv"), err
    assert "code" in err.message


@pytest.mark.parametrize("argv", ALLOWED, ids=lambda a: " ".join(a)[:60])
def test_programs_with_arguments_still_validate(argv):
    assert _parse(_doc(argv)).id == "corpus-book"


@pytest.mark.parametrize(
    "argv",
    [["bash", "-c", "systemctl restart web"], ["python3", "-c", "print(1)"], ["awk", "{print}"]],
)
def test_a_shell_is_refused_even_without_a_param(argv):
    with pytest.raises(RunbookError, match="code"):
        _parse(_doc(argv))


def test_the_ssh_actions_remote_argv_is_checked_the_same_way():
    doc = _doc([])
    doc["steps"] = [
        {
            "name": "remote",
            "action": "ssh",
            "with": {"host": "db1", "user": "ops", "argv": ["sudo", "bash", "-c", X]},
        }
    ]
    with pytest.raises(RunbookError, match=r"steps\.0\.with\.argv\.1: would run shell code"):
        _parse(doc)
    doc["steps"][0]["with"]["argv"] = ["systemctl", "restart", X]
    assert _parse(doc)


def test_verify_and_rollback_sections_are_checked_too():
    doc = _doc(["true"])
    doc["verify"] = [{"name": "v", "check": "command_exit", "with": {"argv": ["sh", "-c", X]}}]
    with pytest.raises(RunbookError, match=r"verify\.0\.with\.argv"):
        _parse(doc)
    doc = _doc(["true"])
    doc["rollback"] = [{"name": "r", "action": "command", "with": {"argv": ["perl", "-e", X]}}]
    with pytest.raises(RunbookError, match=r"rollback\.0\.with\.argv"):
        _parse(doc)


REVIEWED = {"reason": "vendor tool only ships as a shell snippet", "reviewed_by": "alice"}


def test_a_reviewed_exception_stands_only_when_the_policy_allows_it():
    doc = _doc(["bash", "-c", "/opt/vendor/fix.sh --all"], interpreter=REVIEWED)
    with pytest.raises(RunbookError, match="allow_interpreter") as caught:
        _parse(doc)
    assert caught.value.field_path == "steps.0.interpreter"
    assert _parse(doc, allow=["corpus-book"]).id == "corpus-book"
    with pytest.raises(RunbookError, match="allow_interpreter"):
        _parse(doc, allow=["some-other-book"])


@pytest.mark.parametrize(
    "argv",
    [
        ["bash", "-c", f"/opt/vendor/fix.sh {X}"],
        ["bash", "-c", 'exec /opt/vendor/fix.sh "$1"', "fix", X],  # positional, still code
        ["sudo", "python3", "-c", f"print('{X}')"],
        ["ssh", "host", f"restart {X}"],
    ],
)
def test_no_exception_covers_a_param_that_reaches_the_code(argv):
    doc = _doc(argv, interpreter=REVIEWED)
    with pytest.raises(RunbookError, match="a param reaches"):
        _parse(doc, allow=["corpus-book"])


def test_an_exception_on_a_step_that_needs_none_is_refused():
    with pytest.raises(RunbookError, match="runs no shell or interpreter"):
        _parse(_doc(["systemctl", "restart", X], interpreter=REVIEWED), allow=["corpus-book"])


def test_interpreter_args_after_the_code_are_arguments_not_code():
    """`python3 -c CODE arg…`: the args are sys.argv, so a reviewed exception may pass
    params there (the code itself stays fixed)."""
    found = find_interpreter(["python3", "-c", "import sys; print(sys.argv)", "a", "b"])
    assert found and found.code == (1, 2)
    doc = _doc(["python3", "-c", "import sys; print(sys.argv[1])", X], interpreter=REVIEWED)
    assert _parse(doc, allow=["corpus-book"])


def test_const_params_are_fixed_text_not_untrusted():
    doc = _doc(["/opt/tools/{{ tool }}", "--dry-run"])
    doc["params"]["tool"] = {"source": "const:flush-cache", "type": "string"}
    assert _parse(doc)
    doc["steps"][0]["with"]["argv"] = ["{{ tool }}", "-c", "x"]
    doc["params"]["tool"]["source"] = "const:bash"
    with pytest.raises(RunbookError, match="shell code"):
        _parse(doc)


def test_every_starter_runbook_still_validates():
    catalogue = load_dir(ROOT / "runbooks")
    assert catalogue.errors == [] and len(catalogue.runbooks) >= 10


def test_the_reproduction_is_refused_and_never_runs(tmp_path):
    """The probe: `argv: [bash, -lc, "echo {{ x }}"]` with the label
    `x: "hi; touch <file>"` created the file. Now the runbook never loads."""
    books = tmp_path / "books"
    shutil.copytree(ROOT / "runbooks", books)
    pwned = tmp_path / "pwned"
    doc = _doc(["bash", "-lc", "echo {{ x }}"])
    doc["params"]["x"]["pattern"] = "^[^\\x00]{1,100}$"
    (books / "echo.yaml").write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["runbooks", "validate", str(books)])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "echo.yaml" in result.output
    assert "steps.0.with.argv.0: would run shell code (bash -lc)" in result.output
    catalogue = load_dir(books)
    assert catalogue.get("corpus-book") is None  # so no proposal can ever pick it
    assert not pwned.exists()


def test_the_policy_key_lets_a_reviewed_runbook_load_through_the_cli(tmp_path):
    books = tmp_path / "books"
    shutil.copytree(ROOT / "runbooks", books)
    doc = _doc(["bash", "/opt/vendor/fix.sh"], interpreter=REVIEWED)
    (books / "vendor.yaml").write_text(yaml.safe_dump(doc))
    refused = CliRunner().invoke(app, ["runbooks", "validate", str(books)])
    assert refused.exit_code == 1 and "allow_interpreter" in refused.output
    policy = yaml.safe_load((books / "policy.yaml").read_text())
    policy["allow_interpreter"] = ["corpus-book"]
    (books / "policy.yaml").write_text(yaml.safe_dump(policy))
    accepted = CliRunner().invoke(app, ["runbooks", "validate", str(books)])
    assert accepted.exit_code == 0, accepted.output
