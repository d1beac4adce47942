"""SLOs and invariants as code (``infra/slo.yaml``): the frozen models and their small parsers.

The file's shape is defined by ``schemas/slo.schema.json``; these models agree with it (a
test proves it) and add what JSON Schema cannot say: a target is a percentage below 100, an
invariant's condition is ``<PromQL> <comparison> <number>[%]``, and durations are
Prometheus durations.  ``alerting`` holds the burn-rate tiers (the SRE workbook's by
default) and ``window_scale``, which divides every window: tests run the same generator
with minutes instead of days.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SLO_FILE = "infra/slo.yaml"

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CONDITION = re.compile(
    r"^(?P<expr>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(?:\.\d+)?)(?P<pct>%)?\s*$",
    re.S,
)
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
NAME = r"^[a-z][a-z0-9_]*$"


def seconds(duration: str) -> float:
    """``"30d"`` -> 2592000.0.  ValueError on anything that is not a Prometheus duration."""
    found = _DURATION.match(duration)
    if found is None:
        raise ValueError(f"{duration!r} is not a duration like 5m, 1h or 30d")
    return int(found.group(1)) * _UNIT_S[found.group(2)]


def prom_duration(total_s: float) -> str:
    """Seconds as the largest exact Prometheus unit: 3600 -> ``1h``, 0.5 -> ``500ms``."""
    ms = round(total_s * 1000)
    if ms <= 0:
        raise ValueError(f"{total_s}s is shorter than a millisecond")
    for unit in ("w", "d", "h", "m", "s"):
        size = round(_UNIT_S[unit] * 1000)
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Frozen):
    """``expr op threshold``: what must hold.  ``violated`` is the PromQL that selects a
    breach (the negated comparison), so an empty result means the invariant holds."""

    expr: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float

    @property
    def holds(self) -> str:
        return f"({self.expr}) {self.op} {self.threshold:g}"

    @property
    def holds_bool(self) -> str:
        """1 where the condition holds, 0 where it does not (``bool`` keeps every series)."""
        return f"({self.expr}) {self.op} bool {self.threshold:g}"

    @property
    def violated(self) -> str:
        return f"({self.expr}) {_NEGATED[self.op]} {self.threshold:g}"


def parse_condition(text: str) -> Condition:
    found = _CONDITION.match(text.strip())
    if found is None:
        raise ValueError(
            f"condition {text!r} must be '<PromQL> <comparison> <number>' (e.g. 'available > 20%')"
        )
    value = float(found.group("value")) / (100 if found.group("pct") else 1)
    return Condition(expr=found.group("expr").strip(), op=found.group("op"), threshold=value)


_SELECTOR = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*(\{[^{}]*\})?$")
WINDOW = "$window"


class Sli(_Frozen):
    """Two counters: ``good`` events and ``total`` events.  Each is a plain selector
    (``http_requests_total{code!~"5.."}``), rated and summed per window, or a whole PromQL
    expression with ``$window`` where the range goes (``sum(rate(x[$window]))``)."""

    good: str = Field(min_length=1)
    total: str = Field(min_length=1)

    @field_validator("good", "total")
    @classmethod
    def _windowable(cls, value: str) -> str:
        if WINDOW not in value and not _SELECTOR.match(value.strip()):
            raise ValueError(
                f"{value!r} is neither a counter selector nor an expression with {WINDOW}"
            )
        return value

    def rate(self, which: Literal["good", "total"], window: str) -> str:
        query = self.good if which == "good" else self.total
        if WINDOW in query:
            return query.replace(WINDOW, window)
        return f"sum(rate({query.strip()}[{window}]))"


class Slo(_Frozen):
    name: str = Field(pattern=NAME)
    service: str = Field(min_length=1)
    target: str = Field(pattern=r"^\d{1,2}(\.\d+)?%$")
    window: str = Field(pattern=_DURATION.pattern)
    sli: Sli
    runbook: str | None = None
    description: str | None = None

    @property
    def objective(self) -> float:
        """The target as a ratio: ``99.9%`` -> 0.999."""
        return float(self.target.removesuffix("%")) / 100

    @property
    def error_budget(self) -> float:
        return 1 - self.objective


class Invariant(_Frozen):
    name: str = Field(pattern=NAME)
    condition: str
    for_: str = Field(default="5m", alias="for", pattern=_DURATION.pattern)
    on_violation: Literal["ticket", "auto_remediate"] = "ticket"
    runbook: str | None = None
    service: str | None = None
    description: str | None = None

    @field_validator("condition")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_condition(value)
        return value

    @model_validator(mode="after")
    def _remediation_has_a_runbook(self) -> Invariant:
        if self.on_violation == "auto_remediate" and not self.runbook:
            raise ValueError("on_violation: auto_remediate needs the runbook to use")
        return self

    @property
    def parsed(self) -> Condition:
        return parse_condition(self.condition)


class BurnTier(_Frozen):
    """One multiwindow pair: alert when the error ratio exceeds ``burn_rate`` times the
    budget over both the long and the short window."""

    severity: Literal["page", "ticket"]
    burn_rate: float = Field(gt=0)
    long: str = Field(pattern=_DURATION.pattern)
    short: str = Field(pattern=_DURATION.pattern)


WORKBOOK_TIERS = (
    BurnTier(severity="page", burn_rate=14.4, long="1h", short="5m"),
    BurnTier(severity="page", burn_rate=6, long="6h", short="30m"),
    BurnTier(severity="ticket", burn_rate=3, long="1d", short="2h"),
    BurnTier(severity="ticket", burn_rate=1, long="3d", short="6h"),
)


class Alerting(_Frozen):
    tiers: tuple[BurnTier, ...] = Field(default=WORKBOOK_TIERS, min_length=1)
    window_scale: float = Field(default=1, gt=0)
    """Every window (and each invariant's ``for``) is divided by this: 720 turns 1h into 5s."""
    remediation_attempts: int = Field(default=2, ge=1, le=20)
    """Remediations of one ticket that may apply and fail acceptance before the bot stops
    drafting and asks a person (label ``needs-human``)."""

    def scaled(self, duration: str) -> str:
        return prom_duration(seconds(duration) / self.window_scale)


class SloFile(_Frozen):
    slos: tuple[Slo, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    alerting: Alerting = Alerting()

    def slo(self, name: str) -> Slo | None:
        return next((s for s in self.slos if s.name == name), None)

    def invariant(self, name: str) -> Invariant | None:
        return next((i for i in self.invariants if i.name == name), None)
