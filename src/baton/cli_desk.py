"""`baton tickets ...`: the service desk at the command line, a client of the REST API
(BATON_URL, BATON_TOKEN) like the other people's commands; `--json` prints what the
API returned."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from baton.cli_oversight import JsonOpt, TokenOpt, _fail, call, out, table
from baton.cli_views import emit, tickets_app

kb_app = typer.Typer(help="Knowledge-base articles (Markdown).", no_args_is_help=True)


def _ticket(data: dict[str, Any]) -> None:
    out.print(
        f"[bold]ticket #{data['id']}[/] {escape(data['subject'])}  [{data['status']}]",
        highlight=False,
    )
    fields = ["category", "priority", "group", "assignee", "channel", "incident_id", "due_at"]
    out.print(table([{f: data.get(f) for f in fields}], fields))
    out.print(escape(data.get("body") or ""), highlight=False)
    if data.get("suggestions"):
        rows = [
            {"field": f, "top": [f"{v} ({c:.2f})" for v, c in s["top"]], "model": s["model"]}
            for f, s in data["suggestions"].items()
        ]
        out.print(table(rows, ["field", "top", "model"], "suggested"))
    history = [{**c, "by": f"{c['by']['name']} ({c['by']['kind']})"} for c in data["history"]]
    out.print(table(history, ["id", "field", "old", "new", "by", "confidence", "at"], "history"))
    if data["comments"]:
        out.print(table(data["comments"], ["id", "author", "public", "body", "at"], "comments"))
    if data["answers"]:
        out.print(table(data["answers"], ["id", "article", "score", "status"], "answers to send"))
    kb = data["knowledge"]
    if kb["articles"] or kb["similar"]:
        out.print(table(kb["articles"], ["slug", "title", "score"], "articles"))
        out.print(table(kb["similar"], ["ticket", "subject", "score", "resolution"], "similar"))


@tickets_app.command("show")
def show(ticket_id: int, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One ticket: fields, who set each, suggestions, comments, answers awaiting approval."""
    emit(call("GET", f"/api/v1/tickets/{ticket_id}", token), as_json, _ticket)


def _change(ticket_id: int, field: str, value: str | None, token: str | None, as_json: bool):
    body = {"field": field, "value": value}
    emit(call("POST", f"/api/v1/tickets/{ticket_id}/changes", token, body), as_json, _ticket)


@tickets_app.command("set")
def set_field(
    ticket_id: int,
    field: Annotated[str, typer.Argument(help="category, priority, group, assignee, service")],
    value: Annotated[str, typer.Argument(help="New value ('-' clears it).")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a field as yourself (only enabled values are accepted)."""
    _change(ticket_id, field, None if value == "-" else value, token, as_json)


@tickets_app.command("move")
def move(
    ticket_id: int,
    status: Annotated[str, typer.Argument(help="triaged, in_progress, waiting, resolved, closed")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a ticket along its lifecycle (in_progress on a resolved one reopens it)."""
    _change(ticket_id, "status", status, token, as_json)


@tickets_app.command("comment")
def comment(
    ticket_id: int,
    text: str,
    internal: Annotated[bool, typer.Option(help="Not shown to the requester.")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    body = {"body": text, "public": not internal}
    emit(call("POST", f"/api/v1/tickets/{ticket_id}/comments", token, body), as_json, _ticket)


@tickets_app.command("revert")
def revert(change_id: int, token: TokenOpt = None) -> None:
    """Undo one field change from a ticket's history (a model's, or a person's)."""
    call("POST", f"/api/v1/tickets/changes/{change_id}/revert", token)
    out.print(f"change {change_id} reverted")


@tickets_app.command("link")
def link(
    ticket_id: int,
    incident: Annotated[int, typer.Argument(help="Incident id (0 unlinks).")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    body = {"incident": incident or None}
    emit(call("POST", f"/api/v1/tickets/{ticket_id}/link", token, body), as_json, _ticket)


@tickets_app.command("answer")
def answer(
    draft_id: int,
    reject: Annotated[bool, typer.Option(help="Reject instead of sending.")] = False,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve (send to the requester) or reject a suggested answer."""
    verb = "reject" if reject else "approve"
    data = call("POST", f"/api/v1/desk/answers/{draft_id}/{verb}", token)
    emit(data, as_json, lambda d: out.print(f"answer {d['id']}: {d['status']}"))


@tickets_app.command("options")
def options(
    field: Annotated[str | None, typer.Option(help="category, priority or group")] = None,
    value: Annotated[str | None, typer.Option(help="The value to add or change.")] = None,
    disable: Annotated[bool, typer.Option(help="Disable the value.")] = False,
    sla_minutes: Annotated[int | None, typer.Option(help="Priority: minutes to resolve.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The values fields may take; with --field and --value, add or change one."""
    if (field is None) != (value is None):
        raise _fail("give both --field and --value, or neither")
    if field is None:
        rows = call("GET", "/api/v1/desk/options", token)
    else:
        body = {"field": field, "value": value, "enabled": not disable, "sla_minutes": sla_minutes}
        rows = call("PUT", "/api/v1/desk/options", token, body)
    emit(rows, as_json, lambda r: out.print(table(r, ["field", "value", "enabled", "sla_minutes"])))


@kb_app.command("list")
def kb_list(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    emit(
        call("GET", "/api/v1/kb", token), as_json, lambda r: out.print(table(r, ["slug", "title"]))
    )


@kb_app.command("put")
def kb_put(
    slug: str,
    title: Annotated[str, typer.Option(help="Article title.")],
    file: Annotated[Path, typer.Option(help="Markdown body.", exists=True, dir_okay=False)],
    token: TokenOpt = None,
) -> None:
    """Create or replace an article from a Markdown file."""
    body = {"title": title, "body": file.read_text(encoding="utf-8")}
    data = call("PUT", f"/api/v1/kb/{slug}", token, body)
    out.print(f"kb:{data['slug']} saved")


def register() -> None:
    """Add the desk's commands to `baton tickets` (the show/set/... above are on it)."""
    tickets_app.add_typer(kb_app, name="kb")
