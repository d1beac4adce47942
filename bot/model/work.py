"""The artifacts that flow through the loop: ticket, plan, change set, reports, evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @classmethod
    def highest(cls, levels: list[RiskLevel]) -> RiskLevel:
        order = [cls.LOW, cls.MEDIUM, cls.HIGH]
        return max(levels, key=order.index, default=cls.LOW)


class Ticket(_Frozen):
    """What someone asked for. Title, body and replies are untrusted text."""

    number: int
    title: str
    body: str = ""
    author: str
    source: Literal["issue", "alert"] = "issue"
    replies: tuple[str, ...] = ()
    """Later comments on the ticket by people (answers to the bot's questions)."""

    @property
    def text(self) -> str:
        return "\n".join([self.title, self.body, *self.replies])


class Clarification(_Frozen):
    """The engine cannot proceed without a person: it asks instead of guessing."""

    questions: tuple[str, ...] = Field(min_length=1)
    reason: str
    understood: bool = True
    """False when the engine could not map the request to any capability at all."""


class EngineUsage(_Frozen):
    """What one role of an engine spent on a ticket (zeros for the offline engine)."""

    engine: str
    role: Literal["architect", "implementer"]
    model: str = ""
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class Stopped(_Frozen):
    """The engine gave up (a cap on turns, tokens, cost or time; the API failing): no draft."""

    reason: str
    usage: EngineUsage | None = None


class ChangeAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class ResourceChange(_Frozen):
    """One edit to the desired state. ``data`` is the whole resource document
    (or, for delete, at least kind and name); it is validated by the pipeline,
    not trusted because an engine produced it."""

    action: ChangeAction
    kind: str
    name: str
    data: dict[str, Any] = Field(default_factory=dict)


class ChangeSet(_Frozen):
    changes: tuple[ResourceChange, ...] = Field(min_length=1)
    summary: str
    usage: EngineUsage | None = None


class PlannedChange(_Frozen):
    action: ChangeAction
    kind: str
    name: str
    path: str
    hosts: tuple[str, ...] = ()


class Plan(_Frozen):
    """The architect's artifact, posted on the issue and kept in the PR."""

    ticket: int
    objective: str
    capabilities: tuple[str, ...]
    read: tuple[str, ...]
    assumptions: tuple[str, ...]
    changes: tuple[PlannedChange, ...]
    risk: RiskLevel
    validation_steps: tuple[str, ...]
    acceptance_criteria: tuple[str, ...]
    rollback: str
    engine: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    declined: tuple[str, ...] = ()
    """Parts of the request the bot will not do, each with why (untrusted asks refused)."""
    usage: tuple[EngineUsage, ...] = ()
    """Per role: which engine drafted it and what it cost."""


class Finding(_Frozen):
    """One problem found by validation."""

    check: Literal["yamllint", "schema", "pydantic", "references", "policy", "paths", "yaml"]
    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None
    """JSON path inside the document, e.g. ``$.ports.http``."""
    severity: Literal["error", "warning"] = "error"

    def location(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f" {self.path}"
        return where.strip()


class ValidationReport(_Frozen):
    checks: tuple[str, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")


class RunStatus(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the run was killed before its recap: state on hosts is not known
    SKIPPED = "skipped"  # nothing to run (no hosts affected)


class TaskResult(_Frozen):
    host: str
    task: str
    status: Literal["ok", "changed", "failed", "skipped", "unreachable"]
    diff: str = ""
    message: str = ""
    unverified: bool = False
    """Check mode skipped it or cannot verify it (command, uri, a template's validate:)."""


class HostRecap(_Frozen):
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0


class DryRun(_Frozen):
    """Result of an ansible-playbook --check --diff on the hosts a change touches."""

    head_sha: str
    base_sha: str
    status: RunStatus
    hosts: tuple[str, ...]
    recap: tuple[HostRecap, ...] = ()
    tasks: tuple[TaskResult, ...] = ()
    rendered: dict[str, str] = Field(default_factory=dict)
    """Per host, the nginx vhosts the dry-run rendered on the controller (for ``nginx -t``)."""
    nginx_check: str | None = None
    """Output of ``nginx -t`` on the rendered config in a scratch prefix (None: no site touched)."""
    nginx_ok: bool | None = None
    rendered_dns: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per DNS host, the files the dry-run rendered on the controller (for ``dnsmasq --test``)."""
    dnsmasq_check: str | None = None
    """Output of ``dnsmasq --test`` (and the hosts-file check) on them (None: no DNS host)."""
    dnsmasq_ok: bool | None = None
    log_path: str | None = None
    check_mode: bool = True
    duration_s: float = 0.0
    error: str | None = None
    drift: tuple[TaskResult, ...] = ()
    """Changes the dry-run predicts that the change does not cause: the same run on the base
    predicts them too (the estate drifted from the base branch; ``infrabot reconcile``)."""

    @property
    def ok(self) -> bool:
        ran = self.status in (RunStatus.SUCCESSFUL, RunStatus.SKIPPED)
        return ran and self.nginx_ok is not False and self.dnsmasq_ok is not False

    def changed(self) -> tuple[TaskResult, ...]:
        return tuple(t for t in self.tasks if t.status == "changed")

    def unverified(self) -> tuple[TaskResult, ...]:
        return tuple(t for t in self.tasks if t.unverified)

    def failed(self) -> tuple[TaskResult, ...]:
        return tuple(t for t in self.tasks if t.status in ("failed", "unreachable"))


class Verification(_Frozen):
    check: str
    ok: bool
    detail: str
    criteria: tuple[str, ...] = ()
    """The plan's acceptance criteria this check decides (the same wording, word for word)."""


class Evidence(_Frozen):
    pr: int
    merge_sha: str
    apply: DryRun
    verifications: tuple[Verification, ...] = ()
    at: datetime

    @property
    def ok(self) -> bool:
        return self.apply.status == RunStatus.SUCCESSFUL and all(v.ok for v in self.verifications)
