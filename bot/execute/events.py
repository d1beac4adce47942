"""ansible-runner's event stream, parsed once into typed events and folded into a ``DryRun``.

Theory of operation: the adapter turns every raw event into a ``RunnerEvent`` as it arrives;
everything here is pure.  Per task, the result event (``runner_on_ok/failed/skipped/
unreachable``) becomes a ``TaskResult``; ``playbook_on_stats`` becomes the recap.  No stats
event means the run was cut off (killed, timed out): the hosts are then in an unknown state,
unless no task had started yet.

What a result may carry is limited on purpose: the diff and the message come from ``res``
(which Ansible censors for ``no_log`` tasks); ``invocation`` (module arguments) is read only
to decide whether check mode can vouch for a task, never copied out.  Every string goes
through ``redact``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.execute.redact import redact
from bot.execute.request import RunRequest
from bot.model import DryRun, HostRecap, RunStatus, TaskResult

MAX_DIFF_CHARS = 20_000
MAX_MESSAGE_CHARS = 2_000

# Modules whose check mode says nothing about what a real run would do.
_UNVERIFIABLE_MODULES = frozenset({"command", "shell", "script", "raw", "uri", "expect"})
# Modules whose ``validate:`` command check mode skips.
_VALIDATING_MODULES = frozenset({"template", "copy", "lineinfile", "blockinfile", "replace"})
_CORE_PREFIXES = ("ansible.builtin.", "ansible.legacy.")
_RESULT_STATUS: dict[str, Literal["ok", "failed", "skipped", "unreachable"]] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}
_STAT_FIELDS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "skipped": "skipped",
    "dark": "unreachable",
}


class RunnerEvent(BaseModel):
    """The part of one ansible-runner event that the bot uses."""

    model_config = ConfigDict(frozen=True)

    kind: str
    host: str = ""
    task: str = ""
    action: str = ""
    res: dict[str, Any] = Field(default_factory=dict)
    stdout: str = ""
    ignored: bool = False
    stats: dict[str, dict[str, int]] = Field(default_factory=dict)
    pid: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RunnerEvent:
        data = raw.get("event_data") or {}
        res = data.get("res")
        stats = {k: v for k, v in data.items() if k in _STAT_FIELDS and isinstance(v, dict)}
        return cls(
            kind=str(raw.get("event", "")),
            host=str(data.get("host") or ""),
            task=str(data.get("task") or ""),
            action=str(data.get("resolved_action") or data.get("task_action") or ""),
            res=res if isinstance(res, dict) else {},
            stdout=str(raw.get("stdout") or ""),
            ignored=bool(data.get("ignore_errors")),
            stats=stats,
            pid=raw.get("pid") if isinstance(raw.get("pid"), int) else None,
        )


class RunOutcome(BaseModel):
    """How the ansible-playbook process ended, as the adapter saw it."""

    model_config = ConfigDict(frozen=True)

    runner_status: str
    """ansible-runner's status: successful, failed, timeout or canceled."""
    rc: int | None
    duration_s: float
    log_path: str
    log_tail: str = ""


def module_name(action: str) -> str:
    """``ansible.builtin.command`` and ``command`` alike → ``command``; other collections kept."""
    for prefix in _CORE_PREFIXES:
        if action.startswith(prefix):
            return action[len(prefix) :]
    return action


def _censored(res: Mapping[str, Any]) -> bool:
    return bool(res.get("_ansible_no_log")) or "censored" in res


def _module_args(res: Mapping[str, Any]) -> Mapping[str, Any]:
    invocation = res.get("invocation")
    args = invocation.get("module_args") if isinstance(invocation, dict) else None
    return args if isinstance(args, dict) else {}


def _skip_reason(stdout: str) -> str:
    """The reason Ansible printed (at ``-v``) after ``skipping: [host] => {...}``."""
    _, sep, dump = stdout.partition("=> ")
    try:
        result = json.loads(dump) if sep else {}
    except ValueError:
        return ""
    if not isinstance(result, dict):
        return ""
    if result.get("false_condition"):
        return f"condition is false: {result['false_condition']}"
    return str(result.get("skip_reason") or result.get("msg") or "")


def is_unverified(event: RunnerEvent, check: bool) -> bool:
    """Check mode cannot vouch for this result: it skipped it, or it cannot predict it."""
    if not check:
        return False
    if event.kind == "runner_on_skipped":
        reason = (_skip_reason(event.stdout) or event.stdout).lower()
        if "check mode" in reason or "check_mode" in reason:
            return True
        if reason.startswith("condition is false"):
            return False  # a real run would skip it too
    module = module_name(event.action)
    if module in _UNVERIFIABLE_MODULES:
        return True
    return module in _VALIDATING_MODULES and bool(_module_args(event.res).get("validate"))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def _header(header: Any, fallback: str, dest: str) -> str:
    text = str(header or "")
    if dest and (not text or "/.ansible/tmp/" in text or "ansible-local-" in text):
        return dest  # the template action shows its temp file; the destination means more
    return text or fallback


def _one_diff(diff: Mapping[str, Any], dest: str) -> str:
    if diff.get("prepared"):
        return _as_text(diff["prepared"])
    if "before" not in diff and "after" not in diff:
        return ""
    lines = difflib.unified_diff(
        _as_text(diff.get("before")).splitlines(),
        _as_text(diff.get("after")).splitlines(),
        fromfile=_header(diff.get("before_header"), "before", dest),
        tofile=_header(diff.get("after_header"), "after", dest),
        lineterm="",
    )
    return "\n".join(lines)


def _diffs_of(res: Mapping[str, Any]) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(result, diff) pairs of a task result, including each item of a loop."""
    results = res.get("results")
    for result in [res, *(results if isinstance(results, list) else [])]:
        if not isinstance(result, dict) or _censored(result):
            continue
        diff = result.get("diff")
        for one in diff if isinstance(diff, list) else [diff]:
            if isinstance(one, dict):
                yield result, one


def diff_text(res: Mapping[str, Any]) -> str:
    """The task's changes as unified diff text ('' for a ``no_log`` task)."""
    if _censored(res):
        return ""
    parts = []
    for result, diff in _diffs_of(res):
        args = _module_args(result)
        dest = str(args.get("dest") or args.get("path") or "")
        parts.append(_one_diff(diff, dest))
    return _clip("\n".join(p for p in parts if p), MAX_DIFF_CHARS)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + "\n… (cut here; the full log is kept as an artifact)"


def failure_message(res: Mapping[str, Any]) -> str:
    if _censored(res):
        return "failed (the result is hidden by no_log)"
    parts = [str(res.get("msg") or "")]
    if res.get("stderr"):
        parts.append(str(res["stderr"]))
    if isinstance(res.get("rc"), int) and res["rc"] != 0:
        parts.append(f"(rc {res['rc']})")
    failed_items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    parts += [failure_message(r) for r in failed_items]
    return _clip(" ".join(p.strip() for p in parts if p.strip()), MAX_MESSAGE_CHARS)


def task_result(event: RunnerEvent, check: bool) -> TaskResult | None:
    """The ``TaskResult`` a result event stands for; ``None`` for any other event."""
    status = _RESULT_STATUS.get(event.kind)
    if status is None:
        return None
    message = ""
    if status in ("failed", "unreachable"):
        message = failure_message(event.res)
    elif status == "skipped":
        message = _skip_reason(event.stdout)
    shown = status
    if status == "failed" and event.ignored:
        shown, message = "ok", f"failed, ignored: {message}"
    # A no_log result is censored down to nothing; its printed line still says "changed".
    said_changed = event.stdout.lstrip().startswith("changed:")
    changed = status == "ok" and (bool(event.res.get("changed")) or said_changed)
    return TaskResult(
        host=redact(event.host),
        task=redact(event.task),
        status="changed" if changed else shown,
        diff=redact(diff_text(event.res)),
        message=redact(message),
        unverified=is_unverified(event, check),
    )


def recap(stats: Mapping[str, Mapping[str, int]]) -> tuple[HostRecap, ...]:
    hosts = sorted({host for counts in stats.values() for host in counts})
    return tuple(
        HostRecap(
            host=redact(host),
            **{field: int(stats.get(key, {}).get(host, 0)) for key, field in _STAT_FIELDS.items()},
        )
        for host in hosts
    )


def _why_cut_off(outcome: RunOutcome, request: RunRequest) -> str:
    if outcome.runner_status == "timeout":
        return f"it timed out after {request.timeout_s}s"
    if outcome.runner_status == "canceled":
        return "it was cancelled"
    if outcome.rc is None or outcome.rc < 0:
        return "ansible-playbook was killed"
    return f"ansible-playbook exited with rc {outcome.rc}"


def _status_with_recap(
    hosts: Sequence[HostRecap], outcome: RunOutcome
) -> tuple[RunStatus, str | None]:
    if any(h.failed or h.unreachable for h in hosts):
        return RunStatus.FAILED, None
    if outcome.rc != 0 or outcome.runner_status != "successful":
        return RunStatus.FAILED, f"ansible-playbook exited with rc {outcome.rc}"
    return RunStatus.SUCCESSFUL, None


def _status_without_recap(
    events: Sequence[RunnerEvent], outcome: RunOutcome, request: RunRequest
) -> tuple[RunStatus, str]:
    why = _why_cut_off(outcome, request)
    if not any(e.kind == "runner_on_start" for e in events):
        tail = f":\n{outcome.log_tail}" if outcome.log_tail else ""
        return RunStatus.FAILED, f"the run stopped before any task started ({why}){tail}"
    hosts = ", ".join(request.limit)
    return RunStatus.UNKNOWN, (
        f"the run ended without a recap ({why}): the state of hosts {hosts} is unknown; "
        "the next run will reconcile"
    )


RENDERED_FACT = "proxy_rendered_vhosts"
"""The fact the proxy role sets, in a dry-run, to the vhosts it would write (see infra/ansible)."""


def rendered_vhosts(events: Sequence[RunnerEvent]) -> dict[str, str]:
    """Host → the vhost config the dry-run rendered on the controller."""
    out: dict[str, str] = {}
    for event in events:
        facts = event.res.get("ansible_facts") if event.kind == "runner_on_ok" else None
        if isinstance(facts, Mapping) and isinstance(facts.get(RENDERED_FACT), str):
            out[event.host] = facts[RENDERED_FACT]
    return out


RENDERED_DNS_FACT = "dns_rendered_config"
"""The fact the dns role sets, in a dry-run, to the files it would write (file name → text)."""


def rendered_dns(events: Sequence[RunnerEvent]) -> dict[str, dict[str, str]]:
    """Host → the DNS files the dry-run rendered on the controller (for ``dnsmasq --test``)."""
    out: dict[str, dict[str, str]] = {}
    for event in events:
        facts = event.res.get("ansible_facts") if event.kind == "runner_on_ok" else None
        files = facts.get(RENDERED_DNS_FACT) if isinstance(facts, Mapping) else None
        if isinstance(files, Mapping):
            out[event.host] = {str(k): str(v) for k, v in files.items()}
    return out


def summarize(events: Sequence[RunnerEvent], outcome: RunOutcome, request: RunRequest) -> DryRun:
    """Fold a run's events and ending into the ``DryRun`` the rest of the bot reads."""
    tasks = tuple(t for e in events if (t := task_result(e, request.check)) is not None)
    stats = next((e.stats for e in events if e.kind == "playbook_on_stats"), None)
    hosts = recap(stats) if stats is not None else ()
    if stats is not None:
        status, error = _status_with_recap(hosts, outcome)
    else:
        status, error = _status_without_recap(events, outcome, request)
    return DryRun(
        head_sha=request.head_sha,
        base_sha=request.base_sha,
        status=status,
        hosts=request.limit,
        recap=hosts,
        tasks=tasks,
        rendered=rendered_vhosts(events),
        rendered_dns=rendered_dns(events),
        log_path=redact(outcome.log_path),
        check_mode=request.check,
        duration_s=round(outcome.duration_s, 3),
        error=redact(error) if error else None,
    )
