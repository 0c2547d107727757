"""The copilot beside an incident: its investigation (causes ranked with evidence, checks
to make, a drafted fix), follow-up questions, and proposing the drafted fix. On its own
page, opened from the incident: each look is an audited AI action (as the API's GET
is), so the incident page itself does not run one on every load."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from baton.govern.rbac import Permission
from baton.kernel.errors import BatonError
from baton.web.console import PREFIX, Posted, Viewer, acting, attempt, platform_of, render, viewer

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _page(request: Request, v: Viewer, incident_id: int, question: str = "") -> Response:
    commands = platform_of(request).commands
    try:
        report = commands.investigate(incident_id, v.actor)
        reply = commands.ask(incident_id, question, v.actor) if question else None
    except (BatonError, LookupError) as exc:
        back = f"/incidents/{incident_id}"
        return render(request, "error.html", v, code=404, message=str(exc), back=back)
    return render(
        request, "copilot.html", v, r=report, reply=reply, question=question, id=incident_id
    )


@router.get("/incidents/{incident_id}/copilot")
def investigation(request: Request, incident_id: int, v: Viewer = Depends(viewer)) -> Response:
    return _page(request, v, incident_id)


@router.post("/incidents/{incident_id}/copilot/ask")
def ask(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.READ))
) -> Response:
    """A follow-up question (anyone who may read, as the API allows)."""
    return _page(request, post.v, incident_id, post.text("question")[:2000])


@router.post("/incidents/{incident_id}/copilot/fix")
def propose_fix(
    request: Request, incident_id: int, post: Posted = Depends(acting(Permission.OPERATE))
) -> Response:
    """Propose the drafted fix: the policy decides it like any proposal."""
    commands = platform_of(request).commands
    return attempt(
        request,
        post.v,
        lambda: commands.propose_fix(incident_id, post.v.actor, post.reason()),
        f"/incidents/{incident_id}",
    )
