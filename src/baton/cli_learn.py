"""`baton kpis`, `baton trust ...`, `baton review ...` and `baton replay policy`: what
Baton learned, through the API like every other CLI path that a person uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import typer
import yaml

from baton import cli_oversight
from baton.cli_oversight import JsonOpt, TokenOpt, _fail, call, out, table
from baton.cli_views import _flat, emit

trust_app = typer.Typer(
    help="The trust ledger: records, promotions, demotions.", no_args_is_help=True
)
review_app = typer.Typer(help="Weekly and post-incident reviews.", no_args_is_help=True)

SinceOpt = Annotated[str, typer.Option(help="Period start: 7d, 24h, 4w or an ISO time.")]
NameOpt = Annotated[str | None, typer.Option()]
ReasonOpt = Annotated[str, typer.Option(help="Why (kept in the audit ledger).")]


def _path(path: str, **params: Any) -> str:
    given = {k: v for k, v in params.items() if v is not None}
    return path + ("?" + urlencode(given) if given else "")


def kpis(
    since: SinceOpt = "7d",
    until: Annotated[str | None, typer.Option(help="Period end (ISO); default now.")] = None,
    bucket: Annotated[str, typer.Option(help="Series per day or week.")] = "day",
    service: NameOpt = None,
    runbook: NameOpt = None,
    category: Annotated[str | None, typer.Option(help="Ticket category.")] = None,
    team: Annotated[str | None, typer.Option(help="Owner of services and runbooks.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Outcome and behaviour KPIs for a period (MTTA, MTTR, automation, overrides...)."""
    params = {"since": since, "until": until, "bucket": bucket, "service": service}
    params |= {"runbook": runbook, "category": category, "team": team}
    data = call("GET", _path("/api/v1/kpis", **params), token)

    def render(d: dict[str, Any]) -> None:
        summary = {k: v for k, v in d.items() if k not in ("series", "technicians")}
        out.print(table(_flat(summary), ["figure", "value"], "KPIs"))
        if d["series"]:
            names = sorted({k for row in d["series"] for k in row} - {"bucket"})
            out.print(table(d["series"], ["bucket", *names], f"per {d['period']['bucket']}"))
        if d["technicians"]:
            out.print(table(d["technicians"], list(d["technicians"][0]), "technicians"))

    emit(data, as_json, render)


MOVE_COLUMNS = ["id", "runbook", "scope", "kind", "status", "from_tier", "to_tier", "reason"]


@trust_app.command("ledger")
def trust_ledger(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Each runbook x scope's record: proposals, agreement, outcomes, Wilson bound."""
    columns = ["runbook", "scope", "proposals", "judged", "agreed", "verified_agreed"]
    columns += ["wilson_lower", "failures", "rollbacks", "overrides"]
    emit(call("GET", "/api/v1/trust", token), as_json, lambda r: out.print(table(r, columns)))


@trust_app.command("moves")
def trust_moves(
    status: Annotated[str | None, typer.Option(help="recommended, accepted, ...")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Promotion recommendations and demotions, newest first."""
    rows = call("GET", _path("/api/v1/trust/moves", status=status), token)
    emit(rows, as_json, lambda r: out.print(table(r, MOVE_COLUMNS)))


@trust_app.command("review")
def trust_review(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Review the ledger now (leads): demote on failures, recommend promotions."""
    rows = call("POST", "/api/v1/trust/review", token)
    emit(rows, as_json, lambda r: out.print(table(r, MOVE_COLUMNS, "moves made")))


def _decide(move_id: int, verb: str, reason: str, token: str | None, as_json: bool) -> None:
    row = call("POST", f"/api/v1/trust/moves/{move_id}/{verb}", token, {"reason": reason})
    emit(row, as_json, lambda r: out.print(table([r], MOVE_COLUMNS)))


@trust_app.command("accept")
def trust_accept(
    move_id: int, reason: ReasonOpt, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Accept a promotion (leads): the policy raises the runbook's tier."""
    _decide(move_id, "accept", reason, token, as_json)


@trust_app.command("decline")
def trust_decline(
    move_id: int, reason: ReasonOpt, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Decline a promotion (leads)."""
    _decide(move_id, "decline", reason, token, as_json)


@trust_app.command("shadow")
def trust_shadow(token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Shadow mode: what Baton would have done beside what a person then did."""
    columns = ["proposal", "runbook", "tier", "person_runbook", "same_runbook", "same_params"]
    columns.append("would_have_worked")
    emit(call("GET", "/api/v1/shadow", token), as_json, lambda r: out.print(table(r, columns)))


@review_app.command("weekly")
def review_weekly(
    output: Annotated[Path, typer.Option("--out", help="File to write (.html or .pdf).")],
    since: SinceOpt = "7d",
    until: Annotated[str | None, typer.Option(help="Period end (ISO); default now.")] = None,
    token: TokenOpt = None,
) -> None:
    """The weekly review for the AI operations lead, as HTML or PDF."""
    fmt = "pdf" if output.suffix.lower() == ".pdf" else "html"
    path = _path("/api/v1/reviews/weekly", since=since, until=until, format=fmt)
    client = cli_oversight._client(token)  # looked up here: tests swap it
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach Baton at {client.base_url}: {exc}") from None
    finally:
        client.close()
    if response.is_error:
        raise _fail(f"{response.status_code}: {response.text[:200]}")
    output.write_bytes(response.content)
    engine = response.headers.get("X-Baton-Pdf-Engine")
    out.print(f"wrote {output} ({len(response.content)} bytes{', ' + engine if engine else ''})")


@review_app.command("incident")
def review_incident(incident_id: int, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """An incident's timeline from the audit ledger."""
    rows = call("GET", f"/api/v1/incidents/{incident_id}/timeline", token)
    columns = ["ts", "actor", "action", "subject", "decision", "rationale"]
    emit(rows, as_json, lambda r: out.print(table(r, columns, f"incident {incident_id}")))


@review_app.command("lesson")
def review_lesson(
    incident_id: int,
    lesson: Annotated[int, typer.Argument(help="The lesson's index in the review (0 first).")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The runbook or policy change a review's lesson proposes, as its diff."""
    change = call("GET", f"/api/v1/incidents/{incident_id}/review/lessons/{lesson}/diff", token)

    def render(c: dict[str, Any]) -> None:
        print(c["diff"], end="")
        state = (
            f"applied by {c['applied_by']} at {c['applied_at']}"
            if c.get("applied_by")
            else ("applies to the file as it is now" if c["applies"] else f"stale: {c['stale']}")
        )
        out.print(f"{c['file']} ({c['target']}): {state}", markup=False)

    emit(change, as_json, render)


@review_app.command("apply")
def review_apply(
    incident_id: int,
    lesson: Annotated[int, typer.Argument(help="The lesson's index in the review (0 first).")],
    token: TokenOpt = None,
) -> None:
    """Apply the change a lesson proposes (leads); prints the diff applied."""
    done = call("POST", f"/api/v1/incidents/{incident_id}/review/lessons/{lesson}/apply", token)
    print(done["applied_diff"], end="")
    out.print(f"applied to {done['file']} by {done['applied_by']}", markup=False)


def replay_policy(
    policy: Annotated[Path, typer.Option(help="The candidate policy.yaml.")],
    since: SinceOpt = "30d",
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-decide past proposals under a candidate policy: what would have changed, and
    which of the changes people overrode or that failed."""
    try:
        candidate = yaml.safe_load(policy.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"cannot read {policy}: {exc}") from None
    data = call("POST", "/api/v1/replay/policy", token, {"since": since, "policy": candidate})

    def render(d: dict[str, Any]) -> None:
        summary = {k: v for k, v in d.items() if k not in ("moves", "flagged", "changes")}
        out.print(table(_flat(summary), ["figure", "value"], "replay"))
        out.print(table(d["moves"], ["was", "would_be", "count"], "tier moves"))
        columns = ["proposal", "runbook", "service", "was", "would_be", "went_wrong"]
        if d["flagged"]:
            out.print(table(d["flagged"], columns, "flagged: more autonomy where it went wrong"))

    emit(data, as_json, render)


def register(app: typer.Typer, replay_app: typer.Typer) -> None:
    app.command("kpis")(kpis)
    app.add_typer(trust_app, name="trust")
    app.add_typer(review_app, name="review")
    replay_app.command("policy")(replay_policy)
