"""`baton` commands for people on duty: approvals, overrides, the kill switch, on-call,
escalations and the policy. They are clients of the REST API (BATON_URL, BATON_TOKEN), so
the API's role checks apply to the CLI exactly as to every other client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

approvals_app = typer.Typer(help="The approval queue.", no_args_is_help=True)
override_app = typer.Typer(help="Veto, cancel or roll back an execution.", no_args_is_help=True)
oncall_app = typer.Typer(help="On-call rotations.", no_args_is_help=True)
escalations_app = typer.Typer(help="Escalations waiting for a person.", no_args_is_help=True)
policy_app = typer.Typer(help="The autonomy policy.", no_args_is_help=True)
silences_app = typer.Typer(help="Silences: mute matching alerts for a while.", no_args_is_help=True)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="Bearer token (or BATON_TOKEN).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TIMEOUT_S = 10.0


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _client(token: str | None) -> httpx.Client:
    """An HTTP client for the API; tests replace this to talk to an in-process app.

    With the URL and the token both in the environment (or the token passed), nothing
    else of the settings is read, so the full settings model is not even loaded: the
    environment wins over baton.yaml for both, so the answer is the same."""
    secret, url = token or os.environ.get("BATON_TOKEN"), os.environ.get("BATON_URL")
    if not (secret and url):
        from baton.runtime.settings import ConfigError, load_settings

        try:
            cfg = load_settings()
        except ConfigError as exc:
            raise _fail(str(exc), 2) from None
        secret = secret or (cfg.token.get_secret_value() if cfg.token else None)
        url = url or cfg.url
    if not secret:
        raise _fail("this command needs a token: set BATON_TOKEN or pass --token", 2)
    return httpx.Client(
        base_url=url, timeout=TIMEOUT_S, headers={"Authorization": f"Bearer {secret}"}
    )


def call(method: str, path: str, token: str | None, body: Any = None) -> Any:
    """One API call; a clear message and exit 1 on any error the API reports."""
    client = _client(token)
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise _fail(
            f"cannot reach Baton at {client.base_url}: {exc} "
            "(is `baton serve` running? set BATON_URL)"
        ) from None
    finally:
        client.close()
    if response.is_error:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise _fail(f"{response.status_code}: {message}")
    return response.json()


def shown(value: Any) -> str:
    """A value as a person reads it: '-' for nothing (never 'None'), lists joined,
    datetimes to the second."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={shown(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if len(text) >= 19 and text[4] == "-" and text[10] == "T":  # an ISO timestamp
        return text[:19].replace("T", " ")
    return text


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> Table:
    """A Rich table whose cells wrap rather than being cut."""
    grid = Table(title=title, expand=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(escape(shown(row.get(c))) for c in columns))
    return grid


def _show(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    if as_json or columns is None or not isinstance(data, list):
        print(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(table(data, columns))


# --- approvals --------------------------------------------------------------------------
@approvals_app.command("list")
def approvals_list(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Pending approvals with what they would run."""
    rows = call("GET", "/api/v1/approvals", token)
    if as_json:
        _show(rows, True)
        return
    if not rows:
        out.print("no approval is waiting", markup=False)
    for a in rows:
        out.print(approval_card(a))


def approval_card(a: dict[str, Any]) -> Panel:
    """One pending approval as a person decides it: incident, evidence, exactly what would
    run (the dry run), risk and the runbook's track record. Nothing is cut."""
    rb, incident, proposal = a["runbook"], a["incident"], a["proposal"]
    record = rb["track_record"]
    rate = record["success_rate"]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def row(label: str, text: str) -> None:
        grid.add_row(label, escape(text))

    if incident:
        row(
            "incident",
            f"#{incident['id']} {incident['title']} (origin {shown(incident['origin_service'])}; "
            f"services {shown(incident['services'])})",
        )
    else:
        row("incident", "none (asked by a person)")
    row("why", f"{proposal['rationale']} (confidence {proposal['confidence']:.2f})")
    for item in proposal.get("evidence", []):
        if item.get("kind") == "alert":
            summary = f": {item['summary']}" if item.get("summary") else ""
            row("evidence", f"alert {item['name']} on {shown(item['service'])}{summary}")
    row("decided", f"{a['decision']['tier']}: {'; '.join(a['decision']['reasons'])}")
    for section in ("steps", "verify", "rollback"):
        for step in a["dry_run"][section]:
            row(f"dry run {section}", f"{step['name']} — {step['action']} {shown(step['with'])}")
    row(
        "risk",
        f"{rb['risk']}, {'reversible' if rb['reversible'] else 'not reversible'}; "
        f"owner {shown(rb['owner'])}",
    )
    row(
        "track record",
        f"{record['succeeded']} of {record['runs']} runs succeeded"
        + (f" ({rate:.0%})" if rate is not None else " (never ran)"),
    )
    row(
        "approvals",
        f"{len(a['approvers'])} of {a['required_approvals']} "
        f"({shown(a['approvers'])}); expires {shown(a['expires_at'])}",
    )
    title = f"approval #{a['id']}: {rb['id']} {shown(a['params'])}"
    return Panel(grid, title=escape(title), title_align="left")


def _params(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise _fail(f"--param takes name=value, got {bad[0]!r}", 2)
    return dict(p.split("=", 1) for p in pairs)


@approvals_app.command("approve")
def approvals_approve(
    approval_id: int,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    param: Annotated[list[str] | None, typer.Option(help="Changed param, name=value.")] = None,
    token: TokenOpt = None,
) -> None:
    """Approve a pending request (technician and up; never your own)."""
    body = {"reason": reason, "params": _params(param or [])}
    result = call("POST", f"/api/v1/approvals/{approval_id}/approve", token, body)
    waiting = "" if result["execution"] else " (another approver is still needed)"
    out.print(f"approved #{approval_id}; execution {result['execution']}{waiting}", markup=False)


@approvals_app.command("reject")
def approvals_reject(
    approval_id: int,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    token: TokenOpt = None,
) -> None:
    """Reject a pending request."""
    call("POST", f"/api/v1/approvals/{approval_id}/reject", token, {"reason": reason})
    out.print(f"rejected #{approval_id}", markup=False)


# --- overrides --------------------------------------------------------------------------
CategoryOpt = Annotated[
    str, typer.Option(help="wrong_diagnosis, wrong_fix, bad_timing, risk_too_high or other.")
]


def _override(kind: str, execution_id: int, category: str, reason: str, token: str | None) -> None:
    result = call(
        "POST",
        f"/api/v1/executions/{execution_id}/{kind}",
        token,
        {"category": category, "reason": reason},
    )
    out.print(f"{kind}: execution #{execution_id} is now {result['status']}", markup=False)


@override_app.command("veto")
def override_veto(
    execution_id: int,
    category: CategoryOpt,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    token: TokenOpt = None,
) -> None:
    """Stop an `auto` execution during its veto window."""
    _override("veto", execution_id, category, reason, token)


@override_app.command("cancel")
def override_cancel(
    execution_id: int,
    category: CategoryOpt,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    token: TokenOpt = None,
) -> None:
    """Stop a running execution at its next step (changes so far are rolled back)."""
    _override("cancel", execution_id, category, reason, token)


@override_app.command("rollback")
def override_rollback(
    execution_id: int,
    category: CategoryOpt,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    token: TokenOpt = None,
) -> None:
    """Undo a finished execution (reversible runbooks only)."""
    _override("rollback", execution_id, category, reason, token)


@override_app.command("close-breaker")
def override_close_breaker(
    runbook_id: str,
    reason: Annotated[str, typer.Option(help="Why (audited).")],
    token: TokenOpt = None,
) -> None:
    """Trust a runbook again after its circuit breaker opened (leads and admins)."""
    call("POST", f"/api/v1/runbooks/{runbook_id}/breaker/close", token, {"reason": reason})
    out.print(f"breaker of {runbook_id} closed", markup=False)


# --- on-call and escalations ------------------------------------------------------------
@oncall_app.command("who")
def oncall_who(service: str, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Who holds the pager for SERVICE right now."""
    data = call("GET", f"/api/v1/oncall/{service}", token)
    if as_json:
        _show(data, True)
        return
    until = f" until {data['until']}" if data["until"] else ""
    out.print(
        f"{service}: {data['user'] or 'nobody'} ({data['source']}, rotation "
        f"{data['rotation'] or '-'}){until}",
        markup=False,
    )


@escalations_app.command("list")
def escalations_list(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Open escalations."""
    _show(
        call("GET", "/api/v1/escalations", token),
        as_json,
        ["id", "subject", "service", "level", "reason", "created_at"],
    )


@escalations_app.command("ack")
def escalations_ack(escalation_id: int, token: TokenOpt = None) -> None:
    """Acknowledge an escalation: you have it; it stops climbing."""
    call("POST", f"/api/v1/escalations/{escalation_id}/acknowledge", token)
    out.print(f"acknowledged #{escalation_id}", markup=False)


# --- policy -----------------------------------------------------------------------------
@policy_app.command("show")
def policy_show(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """The policy in force, as YAML, then each runbook's tier now and why."""
    policy = call("GET", "/api/v1/policy", token)
    tiers = call("GET", "/api/v1/policy/tiers", token)
    if as_json:
        _show({"policy": policy["policy"], "tiers": tiers}, True)
        return
    print(policy["yaml"], end="")
    columns = ["runbook", "env", "service", "tier", "reasons"]
    out.print(table(tiers, columns, "each runbook's tier now, and why"))


@policy_app.command("apply")
def policy_apply(
    path: Annotated[Path, typer.Argument(help="A policy YAML file.")], token: TokenOpt = None
) -> None:
    """Replace the policy with FILE (leads and admins); prints the audited diff."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"{path}: {exc}", 2) from None
    result = call("PUT", "/api/v1/policy", token, data)
    print(result["diff"] or "no change", end="" if result["diff"] else "\n")


# --- silences ---------------------------------------------------------------------------
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def _duration_s(text: str) -> int:
    unit, number = text[-1:], text[:-1]
    if unit not in _UNITS or not number.isdigit() or int(number) <= 0:
        raise _fail(f"--duration takes a number and m, h or d (e.g. 90m, 2h), got {text!r}", 2)
    return int(number) * _UNITS[unit]


@silences_app.command("list")
def silences_list(
    all_: Annotated[bool, typer.Option("--all", help="Include ended silences.")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Silences in force (or all of them)."""
    rows = call("GET", f"/api/v1/silences?active={'false' if all_ else 'true'}", token)
    _show(rows, as_json, ["id", "matchers", "starts_at", "ends_at", "created_by", "comment"])


@silences_app.command("add")
def silences_add(
    matchers: Annotated[list[str], typer.Argument(help='Matchers, e.g. service="db".')],
    comment: Annotated[str, typer.Option(help="Why (audited).")],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "1h",
    token: TokenOpt = None,
) -> None:
    """Mute alerts matching every MATCHER (technician and up)."""
    from datetime import UTC, datetime, timedelta

    ends = datetime.now(UTC) + timedelta(seconds=_duration_s(duration))
    body = {"matchers": matchers, "ends_at": ends.isoformat(), "comment": comment}
    made = call("POST", "/api/v1/silences", token, body)
    out.print(f"silence #{made['id']} until {made['ends_at']}", markup=False)


@silences_app.command("expire")
def silences_expire(silence_id: int, token: TokenOpt = None) -> None:
    """End a silence now."""
    call("DELETE", f"/api/v1/silences/{silence_id}", token)
    out.print(f"silence #{silence_id} ended", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(silences_app, name="silences")
    app.add_typer(approvals_app, name="approvals")
    app.add_typer(override_app, name="override")
    app.add_typer(oncall_app, name="oncall")
    app.add_typer(escalations_app, name="escalations")
    app.add_typer(policy_app, name="policy")
