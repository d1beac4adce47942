"""Alertmanager's webhook payload (version 4) as frozen models, validated where it enters.

Everything in it is untrusted text: labels and annotations are kept as data and only ever
rendered escaped, inside delimited blocks (``bot/alerts/render.py``).  A payload that is not
Alertmanager's format is an ``InputError`` that says which field is wrong.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import InputError

MAX_ALERTS = 10_000
_LABELS = dict[str, str]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Alert(_Frozen):
    status: Literal["firing", "resolved"]
    labels: _LABELS
    annotations: _LABELS = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=128)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "(no alertname)")


class AlertGroup(_Frozen):
    """One webhook delivery: the alerts of one Alertmanager group."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=4096)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: _LABELS = Field(default_factory=dict, alias="groupLabels")
    common_labels: _LABELS = Field(default_factory=dict, alias="commonLabels")
    common_annotations: _LABELS = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: tuple[Alert, ...] = Field(min_length=1, max_length=MAX_ALERTS)


def parse_alert_group(data: Any) -> AlertGroup:
    """``data`` (decoded JSON) as an ``AlertGroup``; InputError naming the first bad field."""
    if isinstance(data, dict) and "version" in data and data["version"] != "4":
        raise InputError(
            f"Alertmanager payload version {data['version']!r} is not supported: expected '4'"
        )
    try:
        return AlertGroup.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(
            f"not an Alertmanager webhook (version 4) payload: {where}: {err['msg']}"
        ) from exc


def parse_alert_json(text: str | bytes) -> AlertGroup:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not an Alertmanager webhook payload: invalid JSON: {exc}") from exc
    return parse_alert_group(data)


def dispatch_payload(data: Any) -> Any:
    """A GitHub ``repository_dispatch`` event relays the payload under ``client_payload``;
    accept either that event or the bare payload."""
    if isinstance(data, dict) and isinstance(data.get("client_payload"), dict):
        inner = data["client_payload"]
        return inner.get("alertmanager", inner)
    return data
