"""HMAC-SHA256 request signatures: a sender proves it holds the source's key.

The signature is the hex HMAC-SHA256 of the raw body, optionally prefixed `sha256=`
(the GitHub/Grafana convention), in the header the source names.
"""

from __future__ import annotations

import hashlib
import hmac

from baton.kernel.errors import Refused
from baton.sense.normalize import SignalError

SLACK_REPLAY_WINDOW_S = 300  # Slack's own advice for its v0 signatures


class SignatureError(SignalError):
    """The body is not signed by the source's key (answered with 401)."""


def sign(body: bytes, key: str) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, presented: str | None, key: str, header: str) -> None:
    if not presented:
        raise SignatureError(header, "missing; this source requires an HMAC-SHA256 signature")
    digest = presented.strip().removeprefix("sha256=").lower()
    expected = sign(body, key).removeprefix("sha256=")
    if not hmac.compare_digest(digest.encode(), expected.encode()):
        raise SignatureError(header, "signature does not match the body")


def verify_slack(body: bytes, timestamp: str | None, sig: str | None, key: str, now: float) -> None:
    """Slack's v0 request signature: HMAC-SHA256 of `v0:<ts>:<body>`, within 5 minutes."""
    if not timestamp or not sig or not timestamp.isdigit():
        raise Refused("missing Slack signature headers")
    if abs(now - int(timestamp)) > SLACK_REPLAY_WINDOW_S:
        raise Refused("Slack request timestamp too old")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(key.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        raise Refused("Slack signature does not match")
