"""How `baton demo` shows what happens, as it happens, in the terminal (Rich)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from baton.store.db import redact_url

STYLES = {
    "fault.injected": ("FAULT", "magenta"),
    "anomaly": ("ANOMALY", "bold magenta"),
    "incident.opened": ("INCIDENT", "bold red"),
    "incident.grew": ("GROUPED", "red"),
    "incident.origin_changed": ("ORIGIN", "yellow"),
    "incident.resolved": ("RESOLVED", "bold green"),
    "ticket": ("TICKET", "cyan"),
    "proposal": ("PROPOSES", "blue"),
    "triage.no_match": ("NO RUNBOOK", "yellow"),
    "decision": ("DECIDES", "bold blue"),
    "human.approves": ("HUMAN", "bold cyan"),
    "human.vetoes": ("HUMAN", "bold cyan"),
    "human.rejects": ("HUMAN", "bold cyan"),
    "override": ("OVERRIDE", "bold magenta"),
    "pause": ("PAUSE", "bold red"),
    "resume": ("RESUME", "bold green"),
    "escalation": ("ESCALATES", "bold yellow"),
    "shift.ends": ("END", "bold"),
    "execution.queued": ("RUNS", "white"),
    "execution.ran": ("STEPS", "white"),
    "execution.finished": ("RESULT", "bold"),
}


def _text(value: Any) -> str:
    """What a reader sees for a value that may be missing: '-' (never 'None')."""
    return "-" if value is None or value == "" else str(value)


class DemoView:
    """An observer for the platform's notes that prints one line per happening."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._shown: dict[int, tuple[str, ...]] = {}

    def _unchanged(self, kind: str, data: dict[str, Any]) -> bool:
        """A 'grew' note whose services did not change adds nothing for a reader."""
        if not kind.startswith("incident.") or "incident" not in data:
            return False
        services = tuple(data.get("services", ()))
        before = self._shown.get(data["incident"])
        self._shown[data["incident"]] = services
        return kind == "incident.grew" and before == services

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if self._unchanged(kind, data):
            return
        label, style = STYLES.get(kind, (kind.upper(), "white"))
        at: datetime | None = data.get("at")
        clock = at.strftime("%a %H:%M") if at else "--:--"
        text = self._describe(kind, data)
        if text:
            self.console.print(
                f"[dim]{clock}[/] [{style}]{label:<10}[/] {escape(text)}", soft_wrap=True
            )

    @staticmethod
    def _describe(kind: str, d: dict[str, Any]) -> str | None:
        if kind == "fault.injected":
            where = f" on {d['service']}" if d.get("service") else ""
            return f"the sandbox breaks something ({d['scenario']}{where}); Baton is not told what"
        if kind == "anomaly":
            return f"{d['name']} on {_text(d.get('service'))}: {d['summary']}"
        if kind.startswith("incident."):
            services = ", ".join(d.get("services", []))
            return (
                f"#{d['incident']} {d['title']} — origin {_text(d.get('origin'))} — "
                f"services: {services or '-'}"
            )
        if kind == "ticket":
            linked = f" → incident #{d['incident']}" if d.get("incident") else ""
            return f"#{d['ticket']} [{d['category']}] {d['subject']}{linked}"
        if kind == "proposal":
            return (
                f"incident #{d['incident']}: run {d['runbook']} {d['params']} "
                f"(confidence {d['confidence']:.2f}) because {d['rationale']}"
            )
        if kind == "triage.no_match":
            return (
                f"incident #{d['incident']}: no runbook fits {_text(d['origin'])}; left to humans"
            )
        if kind == "decision":
            wait = (
                f" — waiting for a human (approval #{d['approval']})" if d.get("approval") else ""
            )
            return f"{d['runbook']}: {d['tier'].upper()} — {'; '.join(d['reasons'])}{wait}"
        if kind == "human.approves":
            if d.get("execution") is None and d.get("count", 1) < d.get("required", 1):
                return (
                    f"{d['by']} approves #{d['approval']} ({d['count']} of {d['required']}: "
                    "high risk needs another person)"
                )
            return f"{d['by']} approves #{d['approval']} → execution #{d['execution']}"
        if kind == "execution.queued":
            window = d.get("not_before")
            later = f" at {window.strftime('%H:%M:%S')} unless a human vetoes it" if window else ""
            return f"execution #{d['execution']} {d['runbook']} {d['params']}{later}"
        if kind == "human.rejects":
            return f"{d['by']} rejects #{d['approval']}: {_text(d.get('reason'))}"
        if kind == "human.vetoes":
            return f"{d['by']} vetoes execution #{d['execution']} in its veto window"
        if kind == "override":
            return (
                f"{d['kind']} of execution #{d['execution']} by {d['by']} "
                f"[{d['category']}]: {d['reason']}"
            )
        if kind in ("pause", "resume"):
            what = d["scope"] + (f" {d['target']}" if d.get("target") else "")
            verb = "pauses" if kind == "pause" else "resumes"
            return f"{d['by']} {verb} automation ({what}): {d['reason']}"
        if kind == "shift.ends":
            left = ", ".join(f"#{a}" for a in d["approvals"]) or "none"
            return f"end of shift: approvals left waiting for the next person: {left}"
        if kind == "escalation":
            targets = ", ".join(t for n in d.get("notified", []) for t in n["targets"])
            return f"#{d['escalation']} {d['subject']} → {targets or 'nobody'}: {d['reason']}"
        if kind == "execution.ran":
            return f"execution #{d['execution']} steps done → {d['status']}"
        if kind == "execution.finished":
            mark = "verified fix" if d.get("verified") else d["status"]
            track = d.get("track_record") or {}
            record = (
                f" (track record {track['succeeded']}/{track['runs']})" if track.get("runs") else ""
            )
            summary = _text(d.get("summary"))
            return f"execution #{d['execution']} {d['runbook']}: {mark} — {summary}{record}"
        return None

    def banner(self, settings: Any, once: bool) -> None:
        mode = "once through a fixed scenario set" if once else "live"
        self.console.rule(f"[bold]Baton demo[/] — {mode}")
        self.console.print(
            f"database: {redact_url(settings.db_url)}; runbooks: {settings.runbooks_path}"
        )

    def live_intro(
        self,
        settings: Any,
        admin: str,
        technician: str,
        speed: float,
        timeouts: dict[str, int],
        password: str,
    ) -> None:
        url = f"http://{settings.host}:{settings.port}"
        say = self.console.print
        say(f"Console: [bold]{url}/console[/]", highlight=False)
        say(f"  sign in as demo-technician, password [bold]{password}[/]", highlight=False)
        say(f"API: {url}  (docs at {url}/docs)", highlight=False)
        say(f"BATON_HOME: {settings.home}  (database {redact_url(settings.db_url)})")
        say(f"admin token:      [bold]{admin}[/]")
        say(f"technician token: [bold]{technician}[/]  (approve, veto, acknowledge)")
        say(
            f"simulated time runs {speed:g}x; approvals still expire after "
            f"{timeouts['approval_ttl_s'] / speed / 60:.0f} real minutes and escalations wait "
            f"{timeouts['ack_timeout_s'] / speed / 60:.0f} real minutes for an acknowledgement"
        )
        say("in another terminal:", highlight=False)
        say(f"  export BATON_URL={url} BATON_TOKEN={technician}", highlight=False)
        say("  baton approvals list", highlight=False)
        say('  baton approvals approve ID --reason "checked"', highlight=False)
        say(
            "  more tokens: baton token create --demo --name NAME --role ROLE "
            f"(or BATON_HOME={settings.home})",
            highlight=False,
        )
        say("Ctrl-C stops the demo (its tokens are revoked).")

    def summary(self, summary: dict[str, Any]) -> None:
        table = Table("figure", "value", title="demo summary")
        for key, value in summary.items():
            table.add_row(key, str(value))
        self.console.print(table)
