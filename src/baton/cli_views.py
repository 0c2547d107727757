"""`baton` commands for what people on duty look at every day: incidents, executions and
their logs, tickets, KPIs and why each runbook has its tier. Clients of the REST API like
the commands in cli_oversight (BATON_URL, BATON_TOKEN); `--json` prints what the API
returned, for scripts."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.markup import escape

from baton import cli_oversight
from baton.cli_oversight import JsonOpt, TokenOpt, _fail, call, out, shown, table

incidents_app = typer.Typer(
    help="Incidents: grouped alerts with their origin.", no_args_is_help=True
)
executions_app = typer.Typer(help="Runbook executions and their steps.", no_args_is_help=True)
tickets_app = typer.Typer(help="Tickets filed by people.", no_args_is_help=True)

StatusOpt = Annotated[str | None, typer.Option(help="Only this status.")]
LimitOpt = Annotated[int, typer.Option(help="At most this many, newest first.")]


def emit(data: Any, as_json: bool, render: Any) -> None:
    if as_json:
        print(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode())
    else:
        render(data)


def _query(path: str, **params: Any) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + "&".join(f"{k}={v}" for k, v in given.items()) if given else "")


# --- incidents --------------------------------------------------------------------------
INCIDENT_COLUMNS = ["id", "status", "severity", "title", "origin_service", "services", "opened_at"]


def _listing(
    path: str, columns: list[str], status: str | None, limit: int, as_json: bool, token: str | None
) -> None:
    rows = call("GET", _query(path, status=status, limit=limit), token)
    emit(rows, as_json, lambda r: out.print(table(r, columns)))


@incidents_app.command("list")
def incidents_list(
    status: StatusOpt = None, limit: LimitOpt = 50, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Incidents, newest first."""
    _listing("/api/v1/incidents", INCIDENT_COLUMNS, status, limit, as_json, token)


def _incident(data: dict[str, Any]) -> None:
    out.print(f"[bold]incident #{data['id']}[/] {escape(data['title'])}", highlight=False)
    for key in ("status", "severity", "origin_service", "services", "opened_at", "resolved_at"):
        out.print(f"  {key}: {escape(shown(data.get(key)))}", highlight=False)
    out.print(
        table(data.get("events", []), ["id", "name", "service", "status", "occurrences"], "alerts")
    )
    out.print(
        table(
            data.get("proposals", []),
            ["id", "runbook_id", "params", "confidence", "status", "rationale"],
            "proposals",
        )
    )
    if data.get("tickets"):
        out.print(table(data["tickets"], ["id", "subject", "category", "status"], "tickets"))


@incidents_app.command("show")
def incidents_show(incident_id: int, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One incident with its alerts, proposals and tickets."""
    emit(call("GET", f"/api/v1/incidents/{incident_id}", token), as_json, _incident)


# --- executions -------------------------------------------------------------------------
EXECUTION_COLUMNS = ["id", "runbook_id", "params", "status", "verified", "created_at", "summary"]
STEP_COLUMNS = ["seq", "phase", "name", "status", "output"]


@executions_app.command("list")
def executions_list(
    status: StatusOpt = None, limit: LimitOpt = 50, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Executions, newest first."""
    _listing("/api/v1/executions", EXECUTION_COLUMNS, status, limit, as_json, token)


def _execution(data: dict[str, Any]) -> None:
    out.print(
        f"[bold]execution #{data['id']}[/] {escape(data['runbook_id'])} — "
        f"{escape(shown(data['status']))}",
        highlight=False,
    )
    for key in ("params", "incident_id", "requested_by", "verified", "created_at", "summary"):
        out.print(f"  {key}: {escape(shown(data.get(key)))}", highlight=False)
    out.print(table(data.get("steps", []), STEP_COLUMNS, "steps"))


@executions_app.command("show")
def executions_show(execution_id: int, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One execution with every step and its output."""
    emit(call("GET", f"/api/v1/executions/{execution_id}", token), as_json, _execution)


def _sse(lines: Any) -> Any:
    """(event, data) pairs of a Server-Sent Events stream."""
    kind, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            yield kind, orjson.loads("\n".join(data))
            kind, data = "message", []


@executions_app.command("logs")
def executions_logs(
    execution_id: int,
    max_s: Annotated[float, typer.Option(help="Stop following after this many seconds.")] = 3600,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow an execution's steps live until it ends (one line per change)."""
    client = cli_oversight._client(token)
    try:
        with client.stream(
            "GET", f"/api/v1/executions/{execution_id}/logs?max_s={max_s}", timeout=None
        ) as response:
            if response.is_error:
                response.read()
                raise _fail(f"{response.status_code}: {response.text[:200]}")
            for kind, item in _sse(response.iter_lines()):
                if as_json:
                    print(orjson.dumps({"event": kind, **item}).decode(), flush=True)
                elif kind == "end":
                    out.print(f"end: {shown(item.get('status'))}", markup=False)
                else:
                    text = f"[{item.get('seq')}] {item.get('phase')} {item.get('name')}"
                    out.print(f"{text}: {item.get('status')}", markup=False, highlight=False)
                    more = (item.get("append") or item.get("output") or "").rstrip("\n")
                    if more:
                        out.print(more, markup=False, highlight=False)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach Baton at {client.base_url}: {exc}") from None
    finally:
        client.close()


# --- tickets -------------------------------------------------------------------------
@tickets_app.command("list")
def tickets_list(limit: LimitOpt = 100, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Tickets, newest first, with the incident each is linked to."""
    rows = call("GET", _query("/api/v1/tickets", limit=limit), token)
    columns = ["id", "reporter", "subject", "category", "status", "incident_id", "created_at"]
    emit(rows, as_json, lambda r: out.print(table(r, columns)))


def _flat(data: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flat(value, f"{prefix}{key}."))
        else:
            rows.append({"figure": f"{prefix}{key}", "value": value})
    return rows


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(executions_app, name="executions")
    app.add_typer(tickets_app, name="tickets")
