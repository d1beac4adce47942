"""``POST /alerts``: Alertmanager's webhook (payload version 4), authenticated the way
Alertmanager's ``http_config`` sends credentials.

Fails closed: with no credential configured (``INFRABOT_ALERTS_TOKEN`` for a bearer
token, or ``INFRABOT_ALERTS_BASIC`` as ``user:password``) every post is refused; a missing
or wrong ``Authorization`` header is 401.  Comparison is constant-time.  The answer is
2xx only after the intake has durably recorded the alerts (``bot.alerts.intake`` writes
its record before any forge work), so Alertmanager's retries are safe.  Deliveries are
worked one at a time (``_ONE_AT_A_TIME``): intake assumes one per group, and the remediation
PR a new ticket gets is drafted before the answer.
"""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.errors import InputError

TOKEN_ENV = "INFRABOT_ALERTS_TOKEN"
BASIC_ENV = "INFRABOT_ALERTS_BASIC"
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class AlertAnswer:
    status: int
    body: dict[str, object]


def authorised(environ: Mapping[str, str], header: str | None) -> bool:
    """Whether ``header`` (the request's Authorization) carries a configured credential."""
    expected = []
    if environ.get(TOKEN_ENV):
        expected.append("Bearer " + environ[TOKEN_ENV])
    if environ.get(BASIC_ENV):
        expected.append("Basic " + base64.b64encode(environ[BASIC_ENV].encode()).decode())
    if not expected or not header:
        return False
    given = header.strip().encode()
    return any(hmac.compare_digest(given, e.encode()) for e in expected)


def receive_alerts(
    environ: Mapping[str, str],
    header: str | None,
    body: bytes,
    ingest: Callable[[bytes], dict[str, object]],
) -> AlertAnswer:
    if not (environ.get(TOKEN_ENV) or environ.get(BASIC_ENV)):
        return AlertAnswer(
            401, {"error": f"no alert credential configured: set {TOKEN_ENV} or {BASIC_ENV}"}
        )
    if not authorised(environ, header):
        return AlertAnswer(401, {"error": "missing or wrong Authorization"})
    try:
        with _ONE_AT_A_TIME:
            return AlertAnswer(200, ingest(body))
    except InputError as exc:
        return AlertAnswer(400, {"error": str(exc)})
