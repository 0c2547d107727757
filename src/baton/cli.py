"""The `baton` command line (Typer + Rich): a thin edge over the runtime and domains."""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from baton import __version__, cli_desk, cli_learn, cli_triage, cli_views
from baton.cli_copilot import copilot_app
from baton.cli_detect import detect_app, forecast_cmd, logs_app
from baton.cli_oversight import TokenOpt, call, register

# Only what every command needs loads here: pydantic, SQLAlchemy, numpy and the domains
# load inside the commands that use them, so a client command such as `baton kpis`
# starts in a fraction of the time (see `baton bench kpis`).
if TYPE_CHECKING:
    from baton.kernel.audit import Actor
    from baton.runtime.commands import Commands
    from baton.runtime.settings import Settings

app = typer.Typer(
    help="Baton: AI runs the tasks; humans hold the baton.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (bearer auth).", no_args_is_help=True)
runbooks_app = typer.Typer(help="Runbook catalogue tools.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit ledger.", no_args_is_help=True)
user_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
drill_app = typer.Typer(
    help="Practise on simulated incidents (private sandboxes).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(runbooks_app, name="runbooks")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")
app.add_typer(drill_app, name="drill")
register(app)
cli_desk.register()
cli_views.register(app)
app.add_typer(detect_app, name="detect")
app.add_typer(logs_app, name="logs")
app.add_typer(copilot_app, name="copilot")
app.command(name="forecast")(forecast_cmd)
cli_triage.register(app, lambda: _database(settings()))

# soft_wrap: never break lines at 80 columns when piped (tokens, file:line errors, URLs)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def redact_url(url: str) -> str:
    from baton.store.db import redact_url as redact

    return redact(url)


def settings(**overrides: Any) -> Settings:
    from baton.runtime.settings import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _database(s: Settings, create_key: bool = True):  # type: ignore[no-untyped-def]
    from baton.kernel.keyring import KeyringError
    from baton.runtime.ledger import open_database
    from baton.store.migrate import upgrade

    try:
        upgrade(s.db_url)
    except Exception as exc:
        where = redact_url(s.db_url)
        raise fail(f"cannot open the database at {where}: {type(exc).__name__}: {exc}") from None
    try:
        return open_database(s, create_key)
    except (KeyringError, OSError) as exc:
        raise fail(f"cannot read the audit key: {exc}") from None


def _cli_actor(name: str | None = None) -> Actor:
    """The person at the terminal: `--as NAME`, else the OS user. Local CLI access is
    machine-admin access, so the ledger names who used it."""
    from baton.kernel.audit import Actor

    return Actor(name or getpass.getuser(), "human")


@contextmanager
def _local_commands(cfg: Settings | None = None) -> Iterator[Commands]:
    """People's commands on the local database (no server needed): the same checks and
    audit records as through the API. Nothing is started: no runbook reload, no take-over
    of a running server's executions."""
    from baton.kernel.clock import default_clock
    from baton.runtime.platform import Platform

    cfg = cfg or settings()
    _database(cfg).dispose()  # migrated, with a clear error if it cannot be opened
    platform = Platform(cfg, default_clock())
    try:
        yield platform.commands
    finally:
        platform.close()


AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who is acting, for the audit ledger (default: the OS user)."),
]


def _json(data: Any) -> str:
    return orjson.dumps(data, default=str).decode()


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Baton: AI runs the tasks; humans hold the baton."""


# --- serve ------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    tick_s: Annotated[float, typer.Option(help="Seconds between scheduler ticks.")] = 5.0,
    process: Annotated[
        bool,
        typer.Option(
            help="Process the inbox here too; --no-process leaves it to `baton drain` "
            "processes (PostgreSQL scale-out)."
        ),
    ] = True,
) -> None:
    """Run the API server and the scheduler (triage, decide, verify) on real time.

    SIGTERM stops it within seconds: requests in flight get their answer, processing
    ends after its current slice, and what is left in the inbox resumes on the next start.
    """
    import uvicorn

    from baton.api.app import create_app
    from baton.harness.drill import starter
    from baton.kernel.clock import SystemClock
    from baton.runtime.logging import configure_logging
    from baton.runtime.platform import Platform

    cfg = settings(host=host, port=port)
    configure_logging(cfg.log_level, cfg.log_format)
    log = logging.getLogger("baton.pipeline")
    try:
        platform = Platform(
            cfg,
            SystemClock(),
            observer=lambda kind, data: log.info(
                kind, extra={"event": kind, **{k: v for k, v in data.items() if k != "at"}}
            ),
        ).start()
    except ValueError as exc:  # a bad policy.yaml or correlation.yaml names its field
        raise fail(str(exc)) from None
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(tick_s):
            try:
                platform.scheduler.tick()
            except Exception:  # keep the heartbeat alive; the error is logged
                logging.getLogger("baton.scheduler").exception("tick failed")

    log.info(
        "Baton is serving",
        extra={
            "url": f"http://{cfg.host}:{cfg.port}",
            "docs": f"http://{cfg.host}:{cfg.port}/docs",
            "console": f"http://{cfg.host}:{cfg.port}/console",
            "database": redact_url(cfg.db_url),
            "runbooks": len(platform.config.catalogue.runbooks),
            "runbook_errors": [str(e) for e in platform.config.catalogue.errors],
        },
    )

    threading.Thread(target=heartbeat, name="baton-scheduler", daemon=True).start()
    mail_in = platform.desk.smtp_listener()  # ticket mail, when BATON_DESK_SMTP_LISTEN is set
    if mail_in is not None:
        mail_in.start()
    processing = threading.Thread(
        target=platform.drain.process_until, args=(stop,), name="baton-processing", daemon=True
    )
    if process:
        processing.start()
    syslog = None
    if cfg.syslog_port:  # syslog (UDP and TCP) into live detection
        from baton.sense.loglines import SyslogListener

        logs = platform.watch.logs
        syslog = SyslogListener(cfg.host, cfg.syslog_port, logs.add, platform.clock.now).start()
    try:
        app = create_app(platform)
        app.state.start_drill = starter(cfg, create_app)  # the console's Drills page
        uvicorn.run(
            app,
            host=cfg.host,
            port=cfg.port,
            log_level="warning",
            log_config=None,  # configure_logging made uvicorn's lines JSON like ours
            access_log=False,
            backlog=2048,
            timeout_graceful_shutdown=3,  # keep-alive senders do not hold the stop
        )
    finally:
        stop.set()
        if process:
            processing.join(timeout=5)  # one slice, ~0.1 s
        if syslog is not None:
            syslog.close()
        if mail_in is not None:
            mail_in.stop()
        platform.close()


@app.command()
def drain() -> None:
    """Process the inbox only: signals taken by `baton serve --no-process` replicas.

    Run any number against one PostgreSQL database: they take turns slice by slice
    (an advisory lock), so a batch is never processed twice, and when one is killed
    another goes on from the last committed slice. SIGTERM stops it after its slice.
    """
    from baton.kernel.clock import SystemClock
    from baton.runtime.logging import configure_logging
    from baton.runtime.platform import Platform

    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_format)
    platform = Platform(cfg, SystemClock()).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("baton.drain").info(
        "Baton is processing the inbox", extra={"database": redact_url(cfg.db_url)}
    )
    try:
        platform.drain.process_until(stop)
    finally:
        platform.close()


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Executions run at once (threads).")
    ] = 4,
) -> None:
    """Run a Celery worker: executes runbooks queued on BATON_BROKER_URL's queue.

    Start any number, on any machines that reach the broker and the database; the
    scheduler (`baton serve`) queues the work and takes over from workers that die.
    """
    from baton.kernel.clock import SystemClock
    from baton.runtime.logging import configure_logging
    from baton.runtime.platform import Platform
    from baton.runtime.tasks import CeleryBackend

    cfg = settings()
    if not cfg.broker_url:
        raise fail("no broker: set BATON_BROKER_URL (redis://… or amqp://…) to run workers")
    configure_logging(cfg.log_level, cfg.log_format)
    platform = Platform(cfg, SystemClock()).start()
    assert isinstance(platform.backend, CeleryBackend)
    try:
        platform.backend.run_worker(concurrency, cfg.log_level)
    finally:
        platform.close()


# --- db ---------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (SQLite by default, PostgreSQL via BATON_DATABASE_URL)."""
    cfg = settings()
    _database(cfg).dispose()
    out.print(f"database at {redact_url(cfg.db_url)} is up to date", markup=False)


# --- tokens -----------------------------------------------------------------------------
@user_app.command("password")
def user_password(
    name: Annotated[str, typer.Argument(help="Who signs in to the console.")],
    role: Annotated[
        str | None, typer.Option(help="viewer, technician, lead or admin (required when new).")
    ] = None,
    stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    for_demo: Annotated[
        bool, typer.Option("--demo", help="Write to the demo's home (where `baton demo` runs).")
    ] = False,
    as_: AsOpt = None,
) -> None:
    """Set a console password (scrypt-hashed; audited, never logged)."""
    from baton.harness.demo import demo_settings
    from baton.kernel.errors import BatonError

    if stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    cfg = settings()
    if for_demo:
        cfg = demo_settings(cfg)
    with _local_commands(cfg) as commands:
        try:
            commands.set_password(name, role, password, _cli_actor(as_))
        except BatonError as exc:
            raise fail(str(exc)) from None
    err.print(
        f"{name} can sign in at http://{cfg.host}:{cfg.port}/console", markup=False, highlight=False
    )


@drill_app.command("start")
def drill_start(
    person: Annotated[str, typer.Option("--as", help="The trainee (the scorecard is theirs).")],
    scenario: Annotated[
        str | None, typer.Option(help="A sandbox scenario (default: a random one).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the estate and of the random pick.")] = 1,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 10.0,
    minutes: Annotated[float, typer.Option(help="Give up after this many real minutes.")] = 30,
) -> None:
    """Start a drill in a private sandbox with its own database and console; the AI
    proposes, you decide. Ends when the fault is fixed (or time is up): prints the
    scorecard and keeps it under $BATON_HOME/drills/<you>/."""
    from baton.api.app import create_app
    from baton.harness.drill import Live

    cfg = settings()
    try:
        live = Live.open(
            cfg, person, create_app, scenario, seed, speed, port=cfg.port, by=_cli_actor()
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    out.print(f"drill {live.drill.home.name} for {person}: something is wrong in the estate.")
    out.print(
        f"console: {live.url}  (sign in as {person}, "
        f"password {live.password}); Ctrl-C ends the drill",
        highlight=False,
        markup=False,
    )
    signal.signal(signal.SIGINT, lambda *_: live.stop.set())
    print(_json(live.run(minutes)))


@drill_app.command("list")
def drill_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every drill on record: who practised what, and how it went."""
    from baton.harness.drill import on_record

    cards = on_record(settings())
    if as_json:
        print(_json(cards))
        return
    for c in cards:
        out.print(
            f"{c['drill']}: {c['scenario']} origin_found={c.get('origin_found')} "
            f"fix={c.get('time_to_fix_s')}s harmful={c.get('unnecessary_or_harmful')}",
            highlight=False,
            markup=False,
        )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what the token is for.")],
    role: Annotated[str, typer.Option(help="viewer, technician, lead, admin or ingest.")],
    home: Annotated[
        Path | None, typer.Option(help="The BATON_HOME to write to (default: BATON_HOME).")
    ] = None,
    for_demo: Annotated[
        bool, typer.Option("--demo", help="Write to the demo's home (where `baton demo` runs).")
    ] = False,
    as_: AsOpt = None,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    from baton.govern.rbac import parse_role
    from baton.harness.demo import demo_settings
    from baton.kernel.errors import BatonError

    try:
        parse_role(role)
    except ValueError as exc:
        raise fail(str(exc)) from None
    cfg = settings(**({"home": home} if home else {}))
    if for_demo:
        cfg = demo_settings(cfg)
    with _local_commands(cfg) as commands:
        try:
            token, secret = commands.create_token(
                name,
                role,
                _cli_actor(as_),
                why=f"made at the host for {name}: host access is the root of trust",
            )
        except BatonError as exc:
            raise fail(str(exc)) from None
    print(secret)
    err.print(
        f"token {token.id} for {name!r} ({role}) written to BATON_HOME={cfg.home} "
        f"({redact_url(cfg.db_url)}); store it now, it is not shown again",
        markup=False,
        highlight=False,
    )


@token_app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List tokens (never their secrets)."""
    from baton.govern.rbac import list_tokens

    db = _database(settings())
    with db.session() as s:
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "role": t.role,
                "prefix": t.prefix,
                "revoked": t.revoked_at is not None,
            }
            for t in list_tokens(s)
        ]
    if as_json:
        print(_json(rows))
        return
    table = Table("id", "name", "role", "prefix", "revoked")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["name"]), r["role"], r["prefix"], str(r["revoked"]))
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int, as_: AsOpt = None) -> None:
    """Revoke a token by id."""
    from baton.kernel.errors import BatonError

    with _local_commands() as commands:
        try:
            commands.revoke_token(token_id, _cli_actor(as_))
        except BatonError as exc:
            raise fail(str(exc)) from None
    out.print(f"token {token_id} revoked")


# --- runbooks ---------------------------------------------------------------------------
@runbooks_app.command("validate")
def runbooks_validate(
    directory: Annotated[Path, typer.Argument(help="Runbook directory.")],
) -> None:
    """Validate every runbook in DIR (and its policy.yaml and notifications.yaml); each
    error names file, line and field."""
    from baton.act.runbook import load_dir
    from baton.govern.config import load_policy
    from baton.govern.routes import load_routing

    try:
        policy = load_policy(directory / "policy.yaml")
        catalogue = load_dir(directory, policy.allow_interpreter)
        load_routing(directory / "notifications.yaml")
    except (FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    for rb in catalogue:
        out.print(f"[green]ok[/]   {escape(rb.path)}  {rb.id}@{rb.version}", highlight=False)
    for error in catalogue.errors:
        for problem in error.all:
            out.print(f"[red]FAIL[/] {escape(str(problem))}", highlight=False)
    if catalogue.errors:
        raise typer.Exit(1)
    if not catalogue.runbooks:
        raise fail(f"no runbooks found in {directory}", 1)


@runbooks_app.command("dry-run")
def runbooks_dry_run(
    runbook_id: Annotated[str, typer.Argument(help="Runbook id.")],
    param: Annotated[list[str] | None, typer.Option(help="A param, name=value.")] = None,
) -> None:
    """Show exactly what a runbook would run (argv, URLs, targets), running nothing."""
    from baton.act.runbook import ParamError, dry_run, load_dir, resolve_params

    cfg = settings()
    try:
        catalogue = load_dir(cfg.runbooks_path)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    rb = catalogue.get(runbook_id)
    if rb is None:
        raise fail(f"no runbook {runbook_id!r} in {cfg.runbooks_path}")
    pairs = param or []
    if any("=" not in p for p in pairs):
        raise fail("--param takes name=value")
    try:
        params = resolve_params(
            rb, origin_service=None, labels={}, overrides=dict(p.split("=", 1) for p in pairs)
        )
    except ParamError as exc:
        raise fail(str(exc)) from None
    print(
        _json(
            {
                "runbook": rb.id,
                "version": rb.version,
                "params": params,
                "dry_run": dry_run(rb, params),
            }
        )
    )


@runbooks_app.command("schema")
def runbooks_schema() -> None:
    """Print the runbook JSON Schema (for editors and CI)."""
    from baton.act.runbook import schema

    print(orjson.dumps(schema(), option=orjson.OPT_INDENT_2).decode())


# --- audit ------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(
    witness: Annotated[
        list[Path] | None,
        typer.Option(help="Also compare with this witness file (e.g. a webhook's log)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Fail on unauthenticated legacy records too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the chain: hashes and order, each record's MAC under the audit key, the
    stored head both ways, and the external witness; name every tamper case found."""
    from baton.kernel.audit import verify

    cfg = settings()
    db = _database(cfg, create_key=False)
    ledger_witness = [cfg.audit_witness_path] if cfg.audit_witness_path else []
    try:
        with db.session() as s:
            result = verify(s, witness_files=[*ledger_witness, *(witness or [])], strict=strict)
    finally:
        db.dispose()
    if as_json:
        print(_json({**asdict(result), "findings": [asdict(f) for f in result.findings]}))
    elif result.ok:
        legacy = f", {result.legacy} unauthenticated legacy records" if result.legacy else ""
        seen = f", witness at {result.witnessed}" if result.witnessed else ""
        out.print(
            f"[green]audit chain intact[/]: {result.records} records verified "
            f"({result.authenticated} signed{legacy}{seen})",
            highlight=False,
        )
    else:
        for finding in result.findings:
            out.print(f"[red]{finding.case}[/]: {escape(finding.message)}", highlight=False)
    if not result.ok:
        raise typer.Exit(1) if as_json else fail(f"audit chain broken: {result.problem}", 1)


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Add a new audit key: it signs from now on; older keys stay to verify old records."""
    from baton.kernel.keyring import KeyringError, rotate

    path = settings().audit_key_path
    try:
        key_id = rotate(path)
    except KeyringError as exc:
        raise fail(str(exc)) from None
    out.print(f"new audit key {key_id} in {escape(str(path))}; restart Baton to sign with it")


@audit_app.command("export")
def audit_export(
    since: Annotated[
        datetime | None, typer.Option(help="Only records at or after this time.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Only 'jsonl'.")] = "jsonl",
) -> None:
    """Export audit records as JSON lines."""
    from baton.kernel.audit import records, to_dict

    if fmt != "jsonl":
        raise fail(f"unknown format {fmt!r}; only 'jsonl' is supported")
    db = _database(settings())
    after = 0
    try:
        with db.session() as s:
            while batch := records(s, since=since, after_seq=after, limit=1000):
                for r in batch:
                    sys.stdout.write(_json(to_dict(r)) + "\n")
                after = batch[-1].seq
        sys.stdout.flush()
    except BrokenPipeError:  # `| head` closed the pipe: that is the reader's choice
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# --- kill switch ------------------------------------------------------------------------
def _scope(all_: bool, runbook: str | None, service: str | None) -> tuple[str, str | None]:
    chosen = [(n, v) for n, v in (("all", all_), ("runbook", runbook), ("service", service)) if v]
    if len(chosen) != 1:
        raise fail("give exactly one of --all, --runbook ID, --service NAME")
    name, value = chosen[0]
    return name, None if name == "all" else str(value)


LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local", help="Act on the database directly (machine admins, when the API is down)."
    ),
]


def _switch(
    action: str,
    scope: str,
    target: str | None,
    reason: str,
    local: bool,
    token: str | None,
    as_: str | None,
) -> list[str]:
    if not local:
        body = {"scope": scope, "target": target, "reason": reason}
        return call("POST", f"/api/v1/automation/{action}", token, body)["paused"]
    with _local_commands() as commands:
        return getattr(commands, action)(scope, target, _cli_actor(as_), reason)


@app.command()
def pause(
    all_: Annotated[bool, typer.Option("--all", help="Pause every automation.")] = False,
    runbook: Annotated[str | None, typer.Option(help="Pause one runbook.")] = None,
    service: Annotated[str | None, typer.Option(help="Pause automation on one service.")] = None,
    reason: Annotated[str, typer.Option(help="Why (audited).")] = "paused from the CLI",
    local: LocalOpt = False,
    token: TokenOpt = None,
    as_: AsOpt = None,
) -> None:
    """Kill switch (technician and up): stop automation at once; running executions stop
    before their next step."""
    scope, target = _scope(all_, runbook, service)
    active = _switch("pause", scope, target, reason, local, token, as_)
    out.print(f"paused: {', '.join(active)}", markup=False, highlight=False)


@app.command()
def resume(
    all_: Annotated[bool, typer.Option("--all", help="Resume the global switch.")] = False,
    runbook: Annotated[str | None, typer.Option(help="Resume one runbook.")] = None,
    service: Annotated[str | None, typer.Option(help="Resume one service.")] = None,
    reason: Annotated[str, typer.Option(help="Why (audited).")] = "resumed from the CLI",
    local: LocalOpt = False,
    token: TokenOpt = None,
    as_: AsOpt = None,
) -> None:
    """Lift a pause (lead and admin only); the incidents it held back go on to triage."""
    scope, target = _scope(all_, runbook, service)
    active = _switch("resume", scope, target, reason, local, token, as_)
    out.print(f"resumed; still paused: {', '.join(active) or 'nothing'}", markup=False)


# --- bench ------------------------------------------------------------------------------
@app.command(name="bench")
def bench_cmd(
    name: Annotated[str, typer.Argument(help="Bench to run, or `list` to list them.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of figures.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for simulated data.")] = 1,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A public dataset, for the benches that need one (default "
            "$BATON_DATASETS/<bench>; each says where to get it)."
        ),
    ] = None,
    size: Annotated[int | None, typer.Option(help="Workload size (bench-specific).")] = None,
    broker: Annotated[
        str | None, typer.Option(help="Celery broker URL, for benches that can use workers.")
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Seeds, e.g. `1-8`, `1000-1007` (held out) or `3,5` (bench-specific)."),
    ] = None,
) -> None:
    """Measure speed or quality and print the figures."""
    from baton.harness import bench

    if name == "list":
        rows = {key: description for key, (description, _) in sorted(bench.BENCHES.items())}
        if as_json:
            print(_json(rows))
            return
        for key, description in rows.items():
            out.print(f"{key:12} {description}")
        return
    if name not in bench.BENCHES:
        raise fail(f"unknown bench {name!r}; available: {', '.join(sorted(bench.BENCHES))}")
    with Progress(
        TextColumn(f"bench {name}"), BarColumn(), TaskProgressColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task(name, total=None)
        args = bench.BenchArgs(
            seed=seed,
            data=data,
            size=size,
            broker=broker,
            seeds=seeds,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        try:
            result = bench.run(name, args)
        except (ValueError, RuntimeError) as exc:  # a bad setting or a stuck workload
            raise fail(f"bench {name}: {exc}") from None
    table = Table("figure", "value", title=f"bench {name}")
    for key, value in result.items():
        table.add_row(key, str(value))
    out.print(table)
    if as_json:
        print(_json(result))


# --- replay -----------------------------------------------------------------------------
replay_app = typer.Typer(help="Replay recorded alerts through a fresh Baton.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")
cli_learn.register(app, replay_app)


@replay_app.command(name="alerts")
def replay_alerts(
    stream: Annotated[Path, typer.Argument(help="JSON lines: {at, alerts: [Alertmanager v2]}.")],
    services: Annotated[Path, typer.Option(help="Service catalogue (YAML list).")],
    config: Annotated[
        Path | None, typer.Option(help="correlation.yaml to replay with (default: defaults).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per incident, one per line.")
    ] = False,
) -> None:
    """Play a recorded alert stream through a fresh Baton in simulated time and write
    every incident: its alerts (fingerprints, labels), origin and the reasons."""
    import yaml

    from baton.harness.replay import read_catalogue, read_stream, replay

    try:
        posts = read_stream(stream.read_text().splitlines(), str(stream))
        catalogue = read_catalogue(services)
        settings = yaml.safe_load(config.read_text()) if config else None
        if config and not isinstance(settings, dict | None):
            raise ValueError(f"{config}: not a mapping")
        result = replay(posts, catalogue, settings or ({} if config else None))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        for incident in result.incidents:
            print(_json(incident))
        return
    table = Table("id", "status", "origin", "alerts", "title", title="replayed incidents")
    for i in result.incidents:
        table.add_row(
            str(i["id"]), i["status"], str(i["origin"]), str(len(i["alerts"])), i["title"]
        )
    out.print(table)
    placed = sum(1 for a in result.alerts if a.incident_id is not None)
    out.print(f"{result.posts} posts, {len(result.alerts)} alerts, {placed} in incidents")


@replay_app.command(name="storms")
def replay_storms(
    policy: Annotated[Path, typer.Option(help="The candidate policy.yaml.")],
    storms: Annotated[int, typer.Option(min=1, max=50, help="How many simulated storms.")] = 3,
    seed: Annotated[int, typer.Option(help="The first storm's seed; the rest follow.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run simulated storms (the demo's day of faults, one seed each) under the current
    policy and under the candidate, side by side, and say what would have changed."""
    from baton.govern.config import load_policy
    from baton.harness.policy_storms import compare_storms

    runbooks = settings().runbooks_path
    try:
        candidate = load_policy(policy) if policy.is_file() else None
        if candidate is None:
            raise ValueError(f"{policy}: no such file")
        current = load_policy(runbooks / "policy.yaml")
    except ValueError as exc:
        raise fail(str(exc)) from None
    result = compare_storms(current, candidate, runbooks, list(range(seed, seed + storms)))
    if as_json:
        print(_json(result))
        return
    table = Table("figure", "current", "candidate", "change", title=f"{storms} storms")
    for name, t in result["totals"].items():
        table.add_row(name, str(t["current"]), str(t["candidate"]), f"{t['change']:+}")
    out.print(table)
    for line in result["said"]:
        out.print(f"the candidate: {line}")


# --- topology ---------------------------------------------------------------------------
topology_app = typer.Typer(
    help="Import the service topology from where it is already known.", no_args_is_help=True
)
app.add_typer(topology_app, name="topology")
SourcesOpt = list[str] | None


@topology_app.command(name="import")
def topology_import(
    kubernetes: Annotated[
        SourcesOpt,
        typer.Option(help="`kubectl get nodes,pods,services -A -o json` file, or API URL."),
    ] = None,
    prometheus_targets: Annotated[
        SourcesOpt, typer.Option(help="Prometheus URL (/api/v1/targets), or its JSON file.")
    ] = None,
    service_graph: Annotated[
        SourcesOpt,
        typer.Option(help="Prometheus/Tempo query URL with traces_service_graph_*, or JSON."),
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the catalogue YAML.")
    ] = None,
    apply: Annotated[
        bool, typer.Option(help="Declare it to the running Baton (PUT /api/v1/services).")
    ] = False,
    token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build the catalogue from a Kubernetes API, Prometheus targets and a trace service
    graph (docs/correlation.md); print it, write it, or declare it."""
    import yaml

    from baton.correlate.discovery import discover
    from baton.correlate.topology import to_dict, validate_defs

    if not (kubernetes or prometheus_targets or service_graph):
        raise fail("name at least one source: --kubernetes, --prometheus-targets, --service-graph")
    try:
        defs = validate_defs(
            discover(kubernetes or [], prometheus_targets or [], service_graph or [])
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    catalogue = [{k: v for k, v in to_dict(d).items() if v not in (None, [], False)} for d in defs]
    if out_file is not None:
        out_file.write_text(yaml.safe_dump({"services": catalogue}, sort_keys=False))
    if apply:
        call("PUT", "/api/v1/services", token, [to_dict(d) for d in defs])
    if as_json:
        print(_json({"services": catalogue, "applied": apply}))
        return
    table = Table("service", "kind", "runs on", "depends on", title="imported topology")
    for d in defs:
        table.add_row(d.name, d.kind, ", ".join(d.hosts) or (d.zone or ""), ", ".join(d.depends_on))
    out.print(table)


@app.command()
def capture(
    out_file: Annotated[Path, typer.Argument(help="Where to write the stream (JSON lines).")],
    since: Annotated[
        datetime | None, typer.Option(help="Only posts received from then on (ISO time).")
    ] = None,
) -> None:
    """Record the Alertmanager posts this Baton received (what its inbox still keeps) as
    a stream for `baton replay alerts`."""
    from baton.harness.replay import capture as captured
    from baton.harness.replay import write_stream

    db = _database(settings())
    with db.session() as s:
        posts = captured(s, since.replace(tzinfo=since.tzinfo or UTC) if since else None)
    db.dispose()
    out_file.write_text("".join(f"{line}\n" for line in write_stream(posts)))
    out.print(f"{len(posts)} posts, {sum(len(a) for _, a in posts)} alerts -> {out_file}")


# --- demo -------------------------------------------------------------------------------
@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Run a fixed scenario set and exit.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the simulated estate.")] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with a JSON line of counts.")
    ] = False,
    speed: Annotated[
        float, typer.Option(help="Live mode: simulated seconds per real second.")
    ] = 60.0,
    port: Annotated[int | None, typer.Option(help="Live mode: API port (default 8000).")] = None,
    reset: Annotated[
        bool, typer.Option(help="Wipe a database that a demo did not create.")
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            help="Feed the estate's metrics and logs to live detection (anomalies as events)."
        ),
    ] = False,
) -> None:
    """Run Baton against the simulated estate: faults, incidents, proposals, decisions, fixes."""
    from baton.cli_demo import DemoView
    from baton.harness.demo import Demo, DemoPlan, DemoRefused, demo_settings

    cfg = demo_settings(settings(port=port))
    view = DemoView(out)
    try:
        runner = Demo(cfg, DemoPlan(seed=seed, watch=watch), observer=view, reset=reset)
    except DemoRefused as exc:
        raise fail(str(exc)) from None
    view.banner(cfg, once)
    try:
        if once:
            summary = runner.run_once()
            view.summary(summary)
            if as_json:
                print(_json(summary))
            return
        _run_live(runner, cfg, view, speed)
    finally:
        runner.close()


def _run_live(runner: Any, cfg: Settings, view: Any, speed: float) -> None:
    import uvicorn

    from baton.api.app import create_app

    commands = runner.platform.commands
    why = "live demo token, revoked when the demo stops"
    made = [
        commands.create_token(name, role, _cli_actor(), why=why)
        for name, role in (("demo-admin", "admin"), ("demo-technician", "technician"))
    ]
    password = secrets.token_urlsafe(12)  # the console's demo sign-in, shown once
    commands.set_password("demo-technician", "technician", password, _cli_actor())
    timeouts = runner.give_people_real_time(speed)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runner.platform), host=cfg.host, port=cfg.port, log_level="warning"
        )
    )
    threading.Thread(target=server.run, name="baton-api", daemon=True).start()
    view.live_intro(cfg, made[0][1], made[1][1], speed, timeouts, password)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        runner.run_live(stop.is_set, speed)
    finally:
        server.should_exit = True
        for token, _ in made:
            commands.revoke_token(token.id, _cli_actor(), why="live demo stopped")
    view.summary(runner.summary())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
