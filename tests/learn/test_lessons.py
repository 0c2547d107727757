"""A post-incident lesson's runbook or policy change: a stored diff only a lead applies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.kernel.audit import Actor
from baton.kernel.errors import Invalid, Refused
from baton.learn.lessons import StaleDiff, apply_diff, make_diff
from baton.learn.review import Lesson, ReviewIn
from baton.store.models import AuditRecord
from tests.learn.history import record

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
TIA, LEE = Actor("tia", "human"), Actor("lee", "human")
BEFORE = "".join(f"line {i}\n" for i in range(1, 21))


def test_a_diff_applies_where_the_file_moved_and_is_refused_where_it_changed():
    after = BEFORE.replace("line 10\n", "line ten\n")
    diff = make_diff(BEFORE, after, "f.yaml")
    assert apply_diff(BEFORE, diff, "f.yaml") == after
    moved = "new first line\n" + BEFORE  # an edit elsewhere: the diff still applies
    assert apply_diff(moved, diff, "f.yaml") == "new first line\n" + after
    edited = BEFORE.replace("line 9\n", "line nine\n")  # an edit inside the hunk's context
    with pytest.raises(StaleDiff, match=r"f\.yaml changed since the lesson was written: hunk 1"):
        apply_diff(edited, diff, "f.yaml")
    assert apply_diff("", make_diff("", "a: 1\n", "p"), "p") == "a: 1\n"
    unended = make_diff("a: 1\nb: 2", "a: 1\nb: 3", "p")  # no final newline on either side
    assert "-b: 2\n+b: 3\n" in unended and apply_diff("a: 1\nb: 2", unended, "p") == "a: 1\nb: 3\n"
    with pytest.raises(Refused, match="not a unified diff"):
        apply_diff(BEFORE, "rm -rf /\n", "f.yaml")


def _clients(platform):
    with platform.db.session() as s:
        tokens = {
            name: create_token(s, name=name, role=role, at=platform.clock.now())[1]
            for name, role in (("tia", "technician"), ("lee", "lead"))
        }
    client = TestClient(create_app(platform))
    return client, {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


@SQLITE
def test_a_runbook_change_is_a_diff_a_technician_cannot_apply_and_a_lead_can(platform):
    rec = record(platform, "restart-service", tier="auto", approval=None, status="failed")
    path = platform.settings.runbooks_dir / "restart-service.yaml"
    text = path.read_text()
    proposed = text.replace("manual_minutes: 15", "manual_minutes: 25")
    body = ReviewIn(
        summary="restarts took longer by hand than the runbook says",
        lessons=[Lesson(text="the estimate is low", runbook="restart-service", proposed=proposed)],
    )
    saved = platform.commands.save_review(rec["incident"], body, TIA)
    change = saved["lessons"][0]["change"]
    assert change["target"] == "runbook" and change["file"] == "restart-service.yaml"
    assert "-manual_minutes: 15" in change["diff"] and "+manual_minutes: 25" in change["diff"]
    assert "proposed" not in saved["lessons"][0]  # the diff is what is kept
    assert path.read_text() == text  # nothing applied on saving

    client, who = _clients(platform)
    url = f"/api/v1/incidents/{rec['incident']}/review/lessons/0"
    shown = client.get(f"{url}/diff", headers=who["tia"]).json()
    assert shown["diff"] == change["diff"] and shown["applies"] is True
    refused = client.post(f"{url}/apply", headers=who["tia"])
    assert refused.status_code == 403 and path.read_text() == text
    before = platform.config.catalogue.get("restart-service").version
    done = client.post(f"{url}/apply", headers=who["lee"])
    assert done.status_code == 200, done.text
    assert (
        done.json()["applied_by"] == "lee" and "+manual_minutes: 25" in done.json()["applied_diff"]
    )
    assert path.read_text() == proposed
    rb = platform.config.catalogue.get("restart-service")
    assert rb.manual_minutes == 25 and rb.version != before
    with platform.db.session() as s:
        audit = s.scalar(select(AuditRecord).where(AuditRecord.action == "review.lesson_applied"))
        assert audit.actor == "lee" and "+manual_minutes: 25" in audit.inputs["diff"]
    again = client.post(f"{url}/apply", headers=who["lee"])
    assert again.status_code == 409 and "was applied by lee" in again.text
    edited = ReviewIn(summary="edited later", lessons=[Lesson(text="the estimate is low")])
    kept = platform.commands.save_review(rec["incident"], edited, TIA)["lessons"][0]["change"]
    assert kept["applied_by"] == "lee" and kept["diff"] == change["diff"]  # re-saving keeps it


@SQLITE
def test_a_stale_diff_is_refused_and_an_invalid_change_never_saved(platform):
    rec = record(platform, "restart-service", tier="auto", approval=None, status="failed")
    path = platform.settings.runbooks_dir / "restart-service.yaml"
    text = path.read_text()
    diff = make_diff(text, text.replace("risk: low", "risk: medium"), "restart-service.yaml")
    lesson = Lesson(text="a restart is riskier", runbook="restart-service", diff=diff)
    platform.commands.save_review(rec["incident"], ReviewIn(lessons=[lesson]), TIA)
    path.write_text(text.replace("reversible: false", "reversible: true"))  # someone else
    shown = platform.commands.lesson_change(rec["incident"], 0)
    assert shown["applies"] is False and "changed since the lesson was written" in shown["stale"]
    with pytest.raises(StaleDiff, match="write the lesson again"):
        platform.commands.apply_lesson(rec["incident"], 0, LEE)
    assert "reversible: true" in path.read_text() and "risk: low" in path.read_text()

    broken = Lesson(
        text="x", runbook="restart-service", proposed=text.replace("risk: low", "risk: huge")
    )
    with pytest.raises(Invalid, match="risk"):
        platform.commands.save_review(rec["incident"], ReviewIn(lessons=[broken]), TIA)
    renamed = Lesson(
        text="x",
        runbook="restart-service",
        proposed=text.replace("id: restart-service", "id: other"),
    )
    with pytest.raises(Invalid, match="renames"):
        platform.commands.save_review(rec["incident"], ReviewIn(lessons=[renamed]), TIA)
    with pytest.raises(Refused, match="only a person"):
        platform.commands.apply_lesson(rec["incident"], 0, Actor("bot", "ai"))


@SQLITE
def test_a_policy_diff_lesson_applies_through_the_audited_policy_change(platform):
    rec = record(platform, "restart-service", tier="auto", approval=None, status="failed")
    platform.config.apply_policy({"veto_window_s": 120}, LEE)
    policy_path = platform.settings.runbooks_dir / "policy.yaml"
    now = policy_path.read_text()
    diff = make_diff(now, now + "services:\n  web: approve\n", "policy.yaml")
    lesson = Lesson(text="web needs a person", diff=diff)
    saved = platform.commands.save_review(rec["incident"], ReviewIn(lessons=[lesson]), TIA)
    assert saved["lessons"][0]["change"]["target"] == "policy"
    platform.config.apply_policy({"veto_window_s": 120, "approval_ttl_s": 600}, LEE)
    done = platform.commands.apply_lesson(rec["incident"], 0, LEE)  # an edit elsewhere
    assert platform.config.policy.services == {"web": "approve"}
    assert (
        platform.config.policy.approval_ttl_s == 600 and "+  web: approve" in done["applied_diff"]
    )
    with platform.db.session() as s:
        changed = s.scalars(select(AuditRecord).where(AuditRecord.action == "policy.changed"))
        assert [r.actor for r in changed][-1] == "lee"
