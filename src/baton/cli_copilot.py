"""`baton copilot ...`: the copilot at the technician's side, over the API (so its role
checks and audit apply): investigate an incident, ask a follow-up, propose its fix."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from baton.cli_oversight import JsonOpt, TokenOpt, call

copilot_app = typer.Typer(help="The copilot: evidence-backed investigation.", no_args_is_help=True)
out = Console(soft_wrap=True)


def _ids(ids: list[str]) -> str:
    return f"[dim]\\[{escape(', '.join(ids))}][/]" if ids else "[red]\\[unsupported][/]"


def show_report(report: dict[str, Any]) -> None:
    s = report["summary"]
    head = f"[bold]incident {report['incident_id']}[/] ({report['backend']})"
    out.print(f"{head}: {escape(s['text'])} {_ids(s['evidence'])}")
    out.print("[bold]probable causes[/]")
    for n, c in enumerate(report["causes"][:5], 1):
        out.print(f" {n}. {c['confidence']:.2f}  {escape(c['statement'])} {_ids(c['evidence'])}")
    if report["checks"]:
        out.print("[bold]check next[/]")
        for c in report["checks"]:
            out.print(f" - {escape(c['text'])} {_ids(c['evidence'])}")
    fix = report.get("fix")
    if fix:
        out.print(
            f"[bold]proposed fix[/] {escape(fix['runbook'])} {escape(str(fix['params']))} "
            f"{_ids(fix['evidence'])} — `baton copilot fix {report['incident_id']}` proposes it"
        )
    for flag in report.get("flags", []):
        where = flag.get("evidence") or flag.get("model")
        out.print(f"[yellow]flagged[/] {escape(str(where))}: {escape(', '.join(flag['reasons']))}")


@copilot_app.command("investigate")
def investigate(
    incident: Annotated[int, typer.Argument(help="Incident id (or ticket id with --ticket).")],
    ticket: Annotated[bool, typer.Option("--ticket", help="INCIDENT is a ticket id.")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What is going on, probable causes with their evidence, what to check, the fix."""
    path = (
        f"/api/v1/tickets/{incident}/investigation"
        if ticket
        else f"/api/v1/incidents/{incident}/investigation"
    )
    report = call("GET", path, token)
    if as_json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    show_report(report)


@copilot_app.command("ask")
def ask(
    incident: int,
    question: Annotated[
        str, typer.Argument(help='e.g. "what changed on orders-db in the last hour?"')
    ],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A follow-up question; the answer cites its evidence."""
    reply = call("POST", f"/api/v1/incidents/{incident}/ask", token, {"question": question})
    if as_json:
        print(orjson.dumps(reply, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(
        f"[bold]{escape(reply['kind'])}[/]: {escape(reply['answer'])} {_ids(reply['evidence'])}"
    )


@copilot_app.command("fix")
def fix(
    incident: int,
    reason: Annotated[str, typer.Option("--reason", help="Why you propose it.")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose the copilot's fix; the policy decides it (it may need another's approval)."""
    result = call("POST", f"/api/v1/incidents/{incident}/copilot-fix", token, {"reason": reason})
    if as_json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(
        f"proposal {result['proposal']}: tier {result['tier']}"
        + (f", approval {result['approval']} waiting" if result.get("approval") else "")
        + (f", execution {result['execution']}" if result.get("execution") else "")
    )
