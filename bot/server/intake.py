"""What to make of one GitHub webhook request: pure, no I/O.

Order matters: the signature is checked on the raw bytes before anything else reads
them, so an unauthenticated caller learns nothing about how the server parses; only a
signed body is looked at as JSON. The size cap is the shell's (it stops reading).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.events.signature import SIGNATURE_HEADER, Signature, check_signature
from bot.server.queue import Delivery

GITHUB = "github"
KEPT_HEADERS = (
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "user-agent",
    "content-type",
)
_EVENT = re.compile(r"[a-z][a-z_]{0,63}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


@dataclass(frozen=True)
class Answer:
    """A request answered without queueing anything (refused, or a ping)."""

    status: int
    result: str
    """A short name for the metric: ``unauthorized``, ``bad_request``, ``ping``."""
    message: str


def github_delivery(
    secret: str | None, headers: Mapping[str, str], body: bytes, now: float
) -> Delivery | Answer:
    """The delivery to queue, or the answer that refuses it (``headers`` in lower case)."""
    verdict = check_signature(secret, body, headers.get(SIGNATURE_HEADER.lower()))
    if verdict is not Signature.VALID:
        return Answer(401, "unauthorized", f"refused: {verdict.value}")
    event = headers.get("x-github-event", "")
    if not _EVENT.fullmatch(event):
        return Answer(400, "bad_request", "refused: missing or malformed X-GitHub-Event")
    delivery_id = headers.get("x-github-delivery", "")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        return Answer(400, "bad_request", "refused: missing or malformed X-GitHub-Delivery")
    if not _is_json_object(body):
        return Answer(
            400,
            "bad_request",
            "refused: the body is not a JSON object (set the webhook's content type "
            "to application/json)",
        )
    if event == "ping":
        return Answer(200, "ping", "pong")
    return Delivery(
        source=GITHUB,
        id=delivery_id,
        event=event,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        body=body,
        received_at=now,
    )


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False
