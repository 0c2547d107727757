"""The console in a real browser: Debian's Chromium driven by Playwright (no browser
download). One server and one browser for the module; each test its own page."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from baton.kernel.audit import Actor
from baton.runtime.settings import Settings
from baton.store.models import AuditRecord, Event, Execution, ExecutionStep, Incident, Ticket
from tests.helpers import free_port, pending, queue, require_program, run_until

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long enough password"
HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A demo estate with a pending approval, served on a real port."""
    require_program(CHROMIUM, "chromium")
    import uvicorn

    from baton.api.app import create_app
    from baton.harness.demo import Demo, DemoPlan

    home = tmp_path_factory.mktemp("console")
    shutil.copytree(ROOT / "runbooks", home / "runbooks")
    settings = Settings(
        home=home, database_url=f"sqlite:///{home / 'baton.db'}", runbooks_dir=home / "runbooks"
    )
    demo = Demo(settings, DemoPlan(seed=3))
    demo.run_for(5, humans=False)
    demo.inject("bad_deploy")
    assert run_until(demo, lambda: pending(demo))
    host = Actor("host", "human")
    demo.platform.commands.set_password("tess", "technician", PASSWORD, host)
    demo.platform.commands.set_password("vic", "viewer", PASSWORD, host)
    with demo.platform.db.session() as s:  # alert text is hostile: it must stay text
        event = s.scalars(select(Event).where(Event.incident_id.is_not(None))).first()
        event.annotations = {**event.annotations, "summary": HOSTILE}
        incident_id = event.incident_id
    port = free_port()
    app = create_app(demo.platform)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield {"url": f"http://127.0.0.1:{port}", "demo": demo, "incident": incident_id, "app": app}
    server.should_exit = True
    thread.join(timeout=5)
    demo.close()


@pytest.fixture(scope="module")
def browser(console):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


class Watched:
    """A signed-in page that records console errors and failed requests."""

    def __init__(self, browser, url: str, name: str) -> None:
        self.context = browser.new_context(base_url=url)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("requestfailed", lambda r: self._failed(r))
        self.page.goto("/console/incidents")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/console/incidents")

    def _failed(self, request) -> None:
        if "/logs" not in request.url:  # an event stream closed by navigation is not a failure
            self.problems.append(f"{request.url}: {request.failure}")

    def clean(self) -> list[str]:
        """What went wrong since the last look (and forget it)."""
        seen, self.problems[:] = list(self.problems), []
        return seen

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def tess(browser, console):
    w = Watched(browser, console["url"], "tess")
    yield w
    w.close()


def test_every_page_loads_clean_and_hostile_text_stays_text(tess, console):
    page = tess.page
    pages = ("/incidents", "/approvals", "/runs", "/runbooks", "/oncall", "/drills")
    pages += ("/tickets", "/kpis", "/audit?check=1")
    for path in pages:
        response = page.goto(f"/console{path}")
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "Chain intact" in page.inner_text("#verdict")
    page.goto(f"/console/incidents/{console['incident']}")
    assert page.locator("td.annotation", has_text="<script>").count() == 1
    assert page.evaluate("window.__pwned") is None
    assert page.locator("svg.graph .node.origin").count() == 1
    assert page.locator("ol.timeline li").count() >= 1
    page.click("#copilot-link")  # the copilot's investigation, with the hostile text as text
    expect(page.locator("#causes li").first).to_be_visible()
    page.fill("#ask input[name=question]", "what changed before it started?")
    page.click("#ask button")
    expect(page.locator("#answer")).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert tess.clean() == []


def test_approving_with_changed_params_checks_them_first(tess, console):
    """A changed param reaches the approve command, which refuses a bad one: nothing
    runs and the approval still waits."""
    page, demo = tess.page, console["demo"]
    approval_id = pending(demo)[0].id
    page.goto("/console/approvals")
    card = page.locator(f"#approval-{approval_id}")
    card.locator("input[name='param.service']").fill("x; rm -rf /")
    card.locator("input[name=reason]").first.fill("the gateway, not the API")
    card.locator("button.approve").click()
    expect(page.locator("main")).to_contain_text("service")
    assert "/console/runs/" not in page.url
    assert [a.id for a in pending(demo)] == [approval_id]
    with demo.platform.db.session() as s:
        approved = select(AuditRecord).where(
            AuditRecord.subject == f"approval:{approval_id}",
            AuditRecord.action == "approval.approved",
        )
        assert not s.scalars(approved).all()
    assert [p for p in tess.clean() if "409" not in p] == []  # the refusal page is a 409


def test_technician_approves_and_the_run_is_shown(tess, console):
    page, demo = tess.page, console["demo"]
    approval_id = pending(demo)[0].id
    page.goto("/console/approvals")
    card = page.locator(f"#approval-{approval_id}")
    assert "Dry run" in card.inner_text()
    card.locator("input[name=reason]").first.fill("the evidence points at the deploy")
    card.locator("button.approve").click()
    page.wait_for_url("**/console/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#steps .step").first).to_be_visible()

    def finished() -> bool:
        with demo.platform.db.session() as s:
            return s.get(Execution, run_id).status not in ("queued", "running")

    assert run_until(demo, finished, minutes=20)  # simulated time moves; the page follows
    expect(page.locator("#run-status")).to_have_text(
        re.compile("succeeded|failed|rolled_back|cancelled|vetoed"), timeout=15000
    )
    with demo.platform.db.session() as s:
        approved = s.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"approval:{approval_id}")
        ).all()
    assert any(r.actor == "tess" for r in approved)
    assert tess.clean() == []


def test_a_live_log_line_arrives_without_reload(tess, console):
    platform = console["demo"].platform
    execution, _ = queue(platform, "restart-service", "inventory-api")
    with platform.db.session() as s:
        row = s.get(Execution, execution.id)
        row.status = "running"
        s.add(
            ExecutionStep(
                execution_id=row.id,
                seq=1,
                phase="steps",
                name="restart",
                action="restart",
                status="running",
                output="first line\n",
            )
        )
    tess.page.goto(f"/console/runs/{execution.id}")
    tess.page.wait_for_selector("#step-1 pre.log:has-text('first line')")
    with platform.db.session() as s:
        step = s.scalars(select(ExecutionStep).where(ExecutionStep.execution_id == row.id)).one()
        step.output += "second line arrived\n"
    tess.page.wait_for_selector("#step-1 pre.log:has-text('second line arrived')", timeout=5000)
    with platform.db.session() as s:
        s.get(Execution, execution.id).status = "succeeded"
    expect(tess.page.locator("#run-status")).to_have_text("succeeded", timeout=5000)
    assert tess.page.inner_text("#step-1 pre.log").count("first line") == 1
    assert tess.clean() == []


def test_the_kill_switch_is_everywhere_and_pauses(tess, console):
    page = tess.page
    page.goto("/console/runbooks")
    form = page.locator("#pause-form")
    form.locator("input[name=reason]").fill("drill: stop everything")
    form.locator("button").click()
    page.wait_for_url("**/console/runbooks")
    assert "Automation paused" in page.inner_text("#killswitch")
    assert "drill: stop everything" in page.inner_text("#killswitch")
    assert page.locator("#killswitch button", has_text="Resume").count() == 0  # leads only
    platform = console["demo"].platform
    # a service no other test queued: queueing is once per runbook and params
    execution, created = queue(platform, "restart-service", "catalog-api")
    assert created
    platform.dispatch.execute({"execution_id": execution.id})  # the worker asks before each step
    page.goto(f"/console/runs/{execution.id}")
    assert page.inner_text("#run-status") == "cancelled"
    assert "automation paused" in page.inner_text("#run-summary")
    platform.commands.resume("all", None, Actor("lead", "human"), "done")


def test_a_viewer_sees_no_approve_button_and_is_refused_anyway(browser, console):
    vic = Watched(browser, console["url"], "vic")
    try:
        page = vic.page
        page.goto("/console/approvals?status=")
        assert page.locator("button.approve").count() == 0
        assert page.locator("#pause-form").count() == 0
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        approval_id = pending(console["demo"])[0].id if pending(console["demo"]) else 1
        response = page.request.post(
            f"/console/approvals/{approval_id}/approve",
            form={"csrf": csrf, "reason": "I should not be able to"},
            max_redirects=0,
        )
        assert response.status == 403
        forged = page.request.post(
            "/console/automation/pause", form={"csrf": "forged", "reason": "x"}, max_redirects=0
        )
        assert forged.status == 403
    finally:
        vic.close()


def test_the_incident_list_updates_without_reloading(tess, console):
    platform = console["demo"].platform
    tess.page.goto("/console/incidents")
    tess.page.evaluate("window.__same_page = true")
    at = platform.clock.now()
    with platform.db.session() as s:
        s.add(
            Incident(
                title="appeared while you watched",
                status="open",
                severity="critical",
                services=[],
                grouping=[],
                opened_at=at,
                updated_at=at,
            )
        )
    expect(tess.page.locator("#incident-rows")).to_contain_text(
        "appeared while you watched", timeout=8000
    )
    assert tess.page.evaluate("window.__same_page") is True  # no reload happened
    assert tess.clean() == []


def test_a_ticket_is_worked_in_the_browser(tess, console):
    """Queue, ticket page, a model's suggestion applied and reverted, a comment: each
    shown with who made it; hostile ticket text stays text."""
    platform = console["demo"].platform
    ticket = platform.desk.file("pat@example.com", HOSTILE, "the vpn drops every hour")
    with platform.db.session() as s:
        t = s.get(Ticket, ticket.id)
        t.suggestions = {"assignee": {"top": [["tess", 0.8]], "model": "router", "version": "3"}}
    page = tess.page
    page.goto("/console/tickets?q=pwned")
    page.click(f"#ticket-queue a[href='/console/tickets/{ticket.id}']")
    page.wait_for_url(f"**/console/tickets/{ticket.id}")
    assert "<script>" in page.inner_text("h1 .subject")
    assert page.evaluate("window.__pwned") is None
    page.click("#field-assignee form.apply button")
    expect(page.locator("#field-assignee .value")).to_have_text("tess")
    row = page.locator("#history tr", has_text="assignee")
    expect(row.locator(".by")).to_contain_text("tess (human)")
    row.locator("form.revert button").click()
    expect(page.locator("#field-assignee .value")).to_have_text("")
    expect(page.locator("#history tr", has_text="assignee").first).to_contain_text("reverted")
    page.fill("#comment textarea", "<b>on it</b>")
    page.click("#comment button")
    expect(page.locator("ol.comments")).to_contain_text("<b>on it</b>")
    assert tess.clean() == []


def test_a_drill_starts_from_the_console(tess, console):
    """The Drills page starts a private drill and shows its own console's one-time
    password; signing in there works."""
    from baton.api.app import create_app
    from baton.harness.drill import starter

    app, started = console["app"], []
    start = starter(console["demo"].platform.settings, create_app, minutes=5)
    app.state.start_drill = lambda *a: started.append(start(*a)) or started[-1]
    try:
        page = tess.page
        page.goto("/console/drills")
        page.select_option("#start-drill select[name=scenario]", "bad_deploy")
        page.click("#start-drill button")
        password = page.inner_text("#drill-password")
        drill_url = page.get_attribute("#drill-console", "href")
        assert started and started[0].drill.person == "tess" and len(password) >= 12
        assert started[0].drill.home.parent.name == "tess"
        assert tess.clean() == []
        drill = tess.context.browser.new_context()
        try:
            there = drill.new_page()
            there.goto(drill_url)
            there.fill("input[name=name]", "tess")
            there.fill("input[name=password]", password)
            there.click("button[type=submit]")
            there.wait_for_url("**/console/incidents")
        finally:
            drill.close()
    finally:
        del app.state.start_drill
        for live in started:
            live.stop.set()
