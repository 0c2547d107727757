"""Tokens belong to people, and four-eyes counts people: an admin who mints a token
"for bob" holds bob's secret too, so that token's word is also the admin's."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from baton.api.app import create_app
from baton.govern.rbac import create_token
from baton.store.models import ApiToken, AuditRecord
from tests.helpers import pending, rows, run_until


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _host_token(demo, name: str, role: str) -> str:
    """A token made at the host (`baton token create`): its user's alone."""
    with demo.platform.db.session() as s:
        return create_token(s, name=name, role=role, at=demo.clock.now())[1]


def _minted(client, admin: str, name: str, role: str = "technician") -> str:
    resp = client.post("/api/v1/tokens", json={"name": name, "role": role}, headers=_bearer(admin))
    assert resp.status_code == 201, resp.text
    assert resp.json()["issued_by"] == "root"
    return resp.json()["token"]


def test_a_token_minted_for_someone_else_says_so(demo):
    client = TestClient(create_app(demo.platform))
    admin = _host_token(demo, "root", "admin")
    _minted(client, admin, "bob")
    listed = {t["name"]: t for t in client.get("/api/v1/tokens", headers=_bearer(admin)).json()}
    assert listed["bob"]["issued_by"] == "root" and listed["root"]["issued_by"] is None
    [record] = rows(demo, select(AuditRecord).where(AuditRecord.action == "token.created"))
    assert record.actor == "root" and record.rationale == "root issued a token for bob"
    assert record.inputs["issued_by"] == "root"
    # an admin's token for themself is their own
    resp = client.post(
        "/api/v1/tokens", json={"name": "root", "role": "viewer"}, headers=_bearer(admin)
    )
    assert resp.json()["issued_by"] is None
    [row] = rows(demo, select(ApiToken).where(ApiToken.id == resp.json()["id"]))
    assert row.issued_by is None


def test_an_admin_cannot_satisfy_four_eyes_alone_with_a_second_name(demo):
    client = TestClient(create_app(demo.platform))
    admin = _host_token(demo, "root", "admin")
    as_bob = _minted(client, admin, "bob")
    demo.run_for(5, humans=False)
    demo.inject("upstream_outage")  # failover-provider: high risk, two approvers
    assert run_until(demo, lambda: pending(demo))
    [approval] = pending(demo)
    assert approval.required_approvals == 2
    url = f"/api/v1/approvals/{approval.id}/approve"
    assert client.post(url, json={"reason": "ok"}, headers=_bearer(admin)).status_code == 200
    second = client.post(url, json={"reason": "me too"}, headers=_bearer(as_bob))
    assert second.status_code == 409, second.text
    assert "issued by root, whose approval is already counted" in second.json()["error"]["message"]
    assert pending(demo)[0].approvers == ["root"]
    # a person with their own token is a second pair of eyes
    carol = _host_token(demo, "carol", "technician")
    done = client.post(url, json={"reason": "agreed"}, headers=_bearer(carol))
    assert done.status_code == 200 and done.json()["execution"] is not None


def test_the_minted_token_first_then_its_issuer_is_refused_too(demo):
    client = TestClient(create_app(demo.platform))
    admin = _host_token(demo, "root", "admin")
    as_bob = _minted(client, admin, "bob")
    demo.run_for(5, humans=False)
    demo.inject("upstream_outage")
    assert run_until(demo, lambda: pending(demo))
    url = f"/api/v1/approvals/{pending(demo)[0].id}/approve"
    assert client.post(url, json={"reason": "ok"}, headers=_bearer(as_bob)).status_code == 200
    assert pending(demo)[0].counted_people == ["bob", "root"]
    again = client.post(url, json={"reason": "and me"}, headers=_bearer(admin))
    assert again.status_code == 409, again.text


def test_an_admin_cannot_request_as_bob_and_approve_as_themself(demo):
    client = TestClient(create_app(demo.platform))
    admin = _host_token(demo, "root", "admin")
    as_bob = _minted(client, admin, "bob")
    asked = client.post(
        "/api/v1/runbooks/rollback-deploy/executions",
        json={"params": {"service": "checkout-api"}, "reason": "the deploy broke it"},
        headers=_bearer(as_bob),
    ).json()
    assert asked["tier"] == "approve"
    url = f"/api/v1/approvals/{asked['approval']}/approve"
    resp = client.post(url, json={"reason": "fine"}, headers=_bearer(admin))
    assert resp.status_code == 409, resp.text
    assert "root held the token that asked for it" in resp.json()["error"]["message"]
    tom = _host_token(demo, "tom", "technician")
    assert client.post(url, json={"reason": "fine"}, headers=_bearer(tom)).status_code == 200
