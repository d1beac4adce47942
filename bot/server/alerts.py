"""What to make of one ``POST /alerts`` request (Alertmanager's webhook, payload version 4):
pure, no I/O.

Authenticated the way Alertmanager's ``http_config`` sends credentials, failing closed:
with no credential configured (``INFRABOT_ALERTS_TOKEN`` for a bearer token, or
``INFRABOT_ALERTS_BASIC`` as ``user:password``) every post is refused; a missing or wrong
``Authorization`` header is 401; the comparison is constant-time.  Only an authenticated
request is looked at: its content type must be JSON and its body an Alertmanager payload
(``bot.alerts.payload``), else 400/415 and nothing is queued.

An accepted post becomes a ``Delivery`` (source ``alertmanager``) for the server's durable
queue, keyed by the SHA-256 of the body: Alertmanager's retry of a notification, and a
redundant Alertmanager's copy of it, are byte-identical, so the queue answers them
"duplicate" and the worker sees the notification once.  The work (intake, ticket,
remediation PR) is the worker's, through the router, as for a GitHub delivery (ADR 0021).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, SecretStr

from bot.alerts.payload import parse_alert_json
from bot.errors import InputError
from bot.server.intake import Answer
from bot.server.queue import Delivery

ALERTMANAGER = "alertmanager"
ALERT_EVENT = "alert"
TOKEN_ENV = "INFRABOT_ALERTS_TOKEN"
BASIC_ENV = "INFRABOT_ALERTS_BASIC"
KEPT_HEADERS = ("user-agent", "content-type")


class AlertCredentials(BaseModel):
    """The credentials ``/alerts`` accepts (read once from the environment by the CLI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = None
    """``INFRABOT_ALERTS_TOKEN``: ``http_config.authorization.credentials`` (Bearer)."""
    basic: SecretStr | None = None
    """``INFRABOT_ALERTS_BASIC``: ``user:password`` of ``http_config.basic_auth``."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AlertCredentials:
        token, basic = environ.get(TOKEN_ENV), environ.get(BASIC_ENV)
        return cls(
            token=SecretStr(token) if token else None, basic=SecretStr(basic) if basic else None
        )

    @property
    def configured(self) -> bool:
        return self.token is not None or self.basic is not None

    def accepts(self, header: str | None) -> bool:
        """Whether ``header`` (the request's Authorization) carries a configured credential."""
        expected = []
        if self.token is not None:
            expected.append("Bearer " + self.token.get_secret_value())
        if self.basic is not None:
            pair = self.basic.get_secret_value().encode()
            expected.append("Basic " + base64.b64encode(pair).decode())
        if not expected or not header:
            return False
        given = header.strip().encode()
        # every candidate is compared, so the time does not tell which one came close
        matches = [hmac.compare_digest(given, e.encode()) for e in expected]
        return any(matches)


def authorised(environ: Mapping[str, str], header: str | None) -> bool:
    """Whether ``header`` carries a credential configured in ``environ``."""
    return AlertCredentials.from_environ(environ).accepts(header)


def alert_delivery(
    credentials: AlertCredentials, headers: Mapping[str, str], body: bytes, now: float
) -> Delivery | Answer:
    """The delivery to queue, or the answer that refuses it (``headers`` in lower case)."""
    if not credentials.configured:
        return Answer(
            401,
            "unauthorized",
            f"refused: no alert credential configured: set {TOKEN_ENV} or {BASIC_ENV}",
        )
    if not credentials.accepts(headers.get("authorization")):
        return Answer(401, "unauthorized", "refused: missing or wrong Authorization")
    if not _is_json(headers.get("content-type", "")):
        return Answer(
            415, "unsupported_media_type", "refused: the content type is not application/json"
        )
    try:
        parse_alert_json(body)
    except InputError as exc:
        return Answer(400, "bad_request", f"refused: {exc}")
    return Delivery(
        source=ALERTMANAGER,
        id=delivery_id(body),
        event=ALERT_EVENT,
        headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
        body=body,
        received_at=now,
    )


def delivery_id(body: bytes) -> str:
    """The queue key of an Alertmanager post: its content (a retry is the same delivery)."""
    return hashlib.sha256(body).hexdigest()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json"
