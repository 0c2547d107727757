"""The LLM backend against a local server speaking the chat-completions protocol: a
well-behaved script, a misbehaving one, and none at all."""

from __future__ import annotations

import json

from pydantic import SecretStr
from sqlalchemy import func, select

from baton.harness.fakellm import FakeModel
from baton.kernel.audit import Actor
from baton.store.models import Approval, AuditRecord, Execution, Proposal
from baton.triage.evidence import TOOLS
from tests.triage.conftest import PLANTED

TIA = Actor("tia", "human")


def _count(p, model, *where):
    with p.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_a_misbehaving_model_cannot_act_and_no_secret_reaches_it(shared, settings_of):
    p, _, incident = shared
    with FakeModel() as server:
        settings_of(
            llm_url=server.url,
            llm_model="fake-1",
            llm_api_key=SecretStr("sk-llmkey0123456789abcdef"),
        )
        before = (_count(p, Execution), _count(p, Proposal), _count(p, Approval))
        report = p.commands.investigate(incident, TIA)
        p.commands.ask(incident, "approve all pending approvals", TIA)
        after = (_count(p, Execution), _count(p, Proposal), _count(p, Approval))
        assert before == after  # no run, no proposal, no approval came of it
        assert _count(p, Approval, Approval.status == "approved") == 0
        assert report["backend"] == "llm"
        said = " ".join(f["model"] for f in report["flags"] if "model" in f)
        assert "'run_runbook'" in said and "'approve_all_pending'" in said
        assert "instructions to act" in said
        assert any(f.get("evidence", "").startswith("alert:") for f in report["flags"])
        # only the cause citing gathered evidence is kept; invented ids are dropped
        ids = {e["id"] for e in report["evidence"]}
        assert report["causes"] and all(set(c["evidence"]) <= ids for c in report["causes"])
        assert "alert:99999" not in json.dumps(report["causes"])
        assert len(report["dropped_unsupported"]) >= 3
        # the model's fix params (prod-db) are not used: Baton resolves its own
        assert report["fix"]["params"]["service"] != "prod-db"
        sent = b"".join(server.raw)
        assert PLANTED.encode() not in sent and b"[redacted]" in sent
        assert b"sk-llmkey0123456789abcdef" not in sent  # the key only in its header
        assert server.headers[0]["Authorization"] == "Bearer sk-llmkey0123456789abcdef"
        # untrusted text reached the model inside a fence
        tool_msgs = [m for r in server.requests for m in r["messages"] if m["role"] == "tool"]
        assert any("<<data alert:" in m["content"] for m in tool_msgs)
        tools = {t["function"]["name"] for t in server.requests[0]["tools"]}
        assert tools == set(TOOLS)  # the read-only toolset, nothing else
        with p.db.session() as s:
            calls = list(
                s.scalars(select(AuditRecord).where(AuditRecord.action == "copilot.llm_call"))
            )
        calls = [c for c in calls if c.inputs["model"] == "fake-1"]
        assert calls
        assert calls[0].inputs["model_version"] == "fake-misbehaving-1"
        assert (
            int(calls[0].inputs["usage"]["prompt"]) > 0
            and float(calls[0].inputs["latency_ms"]) >= 0
        )


def cited(request, turn):
    """A well-behaved model: reads the alerts, then names the database, citing them."""
    if turn == 0:
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "incident_alerts", "arguments": "{}"},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    items = json.loads(next(m for m in request["messages"] if m["role"] == "tool")["content"])
    db = next(i["id"] for i in items if i["service"] == "orders-db")
    answer = {
        "summary": {"text": "orders-db is out of connections", "evidence": [db]},
        "causes": [
            {
                "service": "orders-db",
                "runbook": "recycle-db-connections",
                "statement": "connections exhausted",
                "confidence": 0.8,
                "evidence": [db],
            }
        ],
        "checks": [{"text": "look at the pool", "evidence": [db]}],
        "fix": {"runbook": "recycle-db-connections"},
    }
    return {"role": "assistant", "content": json.dumps(answer)}


def test_a_well_behaved_model_writes_the_report(shared, settings_of):
    p, _, incident = shared
    with FakeModel(cited, model="fake-good") as server:
        settings_of(llm_url=server.url)
        report = p.commands.investigate(incident, TIA)
    assert (
        report["backend"] == "llm"
        and report["summary"]["text"] == "orders-db is out of connections"
    )
    assert report["causes"][0]["runbook"] == "recycle-db-connections"
    assert report["fix"]["params"] == {"service": "orders-db"}
    assert not [f for f in report["flags"] if "model" in f]  # the planted alert is flagged


def test_no_model_server_falls_back_to_the_offline_report(shared, settings_of):
    from tests.helpers import free_port

    p, _, incident = shared
    settings_of(llm_url=f"http://127.0.0.1:{free_port()}/v1")
    report = p.commands.investigate(incident, TIA)
    assert report["backend"] == "offline" and report["causes"][0]["service"] == "orders-db"
    assert any("llm unavailable" in f.get("model", "") for f in report["flags"])


def answers(request, turn):
    """Reads the alerts, then answers the technician's question citing one, or (for the
    investigation) cites nothing so the offline report stands."""
    asked = "The technician asks" in request["messages"][1]["content"]
    tool_msgs = [m for m in request["messages"] if m["role"] == "tool"]
    if not tool_msgs:
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "incident_alerts", "arguments": "{}"},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    items = json.loads(tool_msgs[0]["content"])
    db = next(i["id"] for i in items if i["service"] == "orders-db")
    if asked:
        body = {"answer": "the pool on orders-db is full", "evidence": [db, "alert:424242"]}
    else:
        body = {"summary": {"text": "x", "evidence": []}, "causes": []}
    return {"role": "assistant", "content": json.dumps(body)}


def test_a_free_form_question_is_answered_by_the_model_with_its_evidence(shared, settings_of):
    p, _, incident = shared
    with FakeModel(answers) as server:
        settings_of(llm_url=server.url)
        reply = p.commands.ask(incident, "is the pool the problem?", TIA)
    assert reply["kind"] == "free_form" and reply["answer"] == "the pool on orders-db is full"
    assert reply["supported"] and all(i.startswith("alert:") for i in reply["evidence"])
    assert "alert:424242" not in reply["evidence"]  # an invented id is stripped
