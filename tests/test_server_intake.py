"""The pure intake decision: what a GitHub request becomes."""

from __future__ import annotations

import pytest

from bot.events.signature import sign
from bot.server.intake import Answer, github_delivery
from bot.server.queue import Delivery

SECRET = "s3cret"
BODY = b'{"action": "opened", "issue": {"number": 1}}'


def _headers(body: bytes = BODY, **extra: str) -> dict[str, str]:
    return {
        "x-github-event": "issues",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "x-hub-signature-256": sign(SECRET, body),
        "content-type": "application/json",
        "x-forwarded-for": "203.0.113.9",
    } | extra


def test_a_signed_delivery_becomes_a_delivery_with_the_headers_a_parser_needs() -> None:
    delivery = github_delivery(SECRET, _headers(), BODY, now=5.0)
    assert isinstance(delivery, Delivery)
    assert (delivery.source, delivery.event, delivery.body) == ("github", "issues", BODY)
    assert delivery.id == "72d3162e-cc78-11e3-81ab-4c9367dc0958" and delivery.received_at == 5.0
    assert set(delivery.headers) == {"x-github-event", "x-github-delivery", "content-type"}


@pytest.mark.parametrize(
    ("secret", "headers", "body", "status", "result"),
    [
        (None, _headers(), BODY, 401, "unauthorized"),
        (SECRET, _headers(**{"x-hub-signature-256": ""}), BODY, 401, "unauthorized"),
        (SECRET, _headers(b"{}"), BODY, 401, "unauthorized"),
        (SECRET, _headers(**{"x-github-event": "Issues!"}), BODY, 400, "bad_request"),
        (SECRET, _headers(**{"x-github-delivery": "a b"}), BODY, 400, "bad_request"),
        (SECRET, _headers(b"not json"), b"not json", 400, "bad_request"),
        (SECRET, _headers(b"[" * 100000), b"[" * 100000, 400, "bad_request"),
        (SECRET, _headers(b'"text"'), b'"text"', 400, "bad_request"),
        (SECRET, _headers(b"{}", **{"x-github-event": "ping"}), b"{}", 200, "ping"),
    ],
    ids=[
        "no-secret",
        "no-signature",
        "other-body",
        "bad-event",
        "bad-delivery-id",
        "not-json",
        "deep-json",
        "json-string",
        "ping",
    ],
)
def test_everything_else_is_answered_without_queueing(
    secret: str | None, headers: dict[str, str], body: bytes, status: int, result: str
) -> None:
    answer = github_delivery(secret, headers, body, now=0.0)
    assert isinstance(answer, Answer) and (answer.status, answer.result) == (status, result)


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    answer = github_delivery(SECRET, _headers(b"{}", **{"x-github-event": ""}), b"nope", 0.0)
    assert isinstance(answer, Answer) and answer.status == 401
