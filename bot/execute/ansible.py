"""The real playbook runner: ansible-runner behind ``PlaybookRunner``.

The run happens in this thread.  ansible-runner starts, under a pty, the run guard
(``guard.py``), which starts ansible-playbook and keeps every process of the run below it
(a child subreaper), even Ansible's workers, which leave the process group with ``setsid``.
A run that does not finish (its timeout, an exception while waiting: Ctrl-C, a bug in a
progress callback) is ended by stopping and killing the guard's whole tree before
``run`` returns or the exception goes on; a bot that dies mid-run takes the tree with it
(the guard ends it on SIGHUP or on its parent's death).  So no process of the run keeps
changing hosts after the bot has stopped looking, and the lock is released only after.
The timeout is the bot's (ansible-runner's own kills the process group, the guard first).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_runner import Runner, RunnerConfig

from bot.errors import InfrabotError
from bot.execute import guard
from bot.execute.artifacts import log_tail, redact_tree
from bot.execute.environment import child_env, runner_env
from bot.execute.events import RunnerEvent, RunOutcome, summarize
from bot.execute.redact import redact
from bot.execute.request import Progress, RunRequest, skipped_run
from bot.model import DryRun, RunStatus

# How often ansible-runner wakes up to look at the clock (its default, 5 s, delays timeouts).
_POLL_S = 1


def ansible_args(request: RunRequest) -> list[str]:
    """ansible-playbook options besides inventory, limit and playbook (ansible-runner's)."""
    # -v makes Ansible print why a task was skipped, which tells check-mode skips apart.
    return ["--diff", "-v", *(["--check"] if request.check else [])]


def _missing_input(request: RunRequest) -> str | None:
    playbook = request.playbook_dir / request.playbook
    if not playbook.is_file():
        return f"no playbook at {playbook}"
    if not request.inventory.is_file():
        return f"no inventory at {request.inventory}"
    return None


def _not_started(request: RunRequest, error: str) -> DryRun:
    return DryRun(
        head_sha=request.head_sha,
        base_sha=request.base_sha,
        status=RunStatus.FAILED,
        hosts=request.limit,
        check_mode=request.check,
        error=redact(error),
    )


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    with contextlib.suppress(OSError):  # already gone
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def _end_run(tag: str, ansible_pid: int | None) -> None:
    """End every process of the run: the guard's tree, or, without a guard (it is gone),
    at least ansible-playbook's process group."""
    found = guard.find_guard(tag)
    if found is not None:
        guard.end_tree(found)
    else:
        _kill_group(ansible_pid)


_clock = time.monotonic  # the timeout's clock (tests move it)


MITOGEN_MISSING = (
    "infrabot.yaml asks for ansible_strategy: mitogen, but mitogen is not installed: "
    "pip install 'infrabot[mitogen]' (or remove the setting)"
)


def mitogen_strategy_plugins() -> Path | None:
    """Where Mitogen's strategy plugins are, or None when it is not installed."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        return None
    plugins = Path(spec.origin).parent / "plugins" / "strategy"
    return plugins if (plugins / "mitogen_free.py").is_file() else None


class AnsibleRunner:
    """Runs ansible-playbook through ansible-runner with a scrubbed environment."""

    def __init__(self, bin_dir: Path | None = None, *, strategy: str = "free") -> None:
        self._bin_dir = bin_dir or Path(sys.executable).parent
        self._strategy = strategy

    def run(self, request: RunRequest, progress: Progress | None = None) -> DryRun:
        if not request.limit:
            return skipped_run(request)
        problem = _missing_input(request)
        if problem:
            return _not_started(request, problem)
        plugins = None
        if self._strategy == "mitogen":
            plugins = mitogen_strategy_plugins()
            if plugins is None:
                return _not_started(request, MITOGEN_MISSING)
        with tempfile.TemporaryDirectory(prefix="infrabot-runner-") as private:
            temp = Path(private) / "tmp"
            env = child_env(os.environ, self._bin_dir, request.playbook_dir, temp, plugins)
            if shutil.which("ansible-playbook", path=env["PATH"]) is None:
                raise InfrabotError(
                    "ansible-playbook not found: install ansible-core (pip install -e .)"
                )
            events, outcome = self._execute(request, Path(private), env, progress)
        redact_tree(request.run_dir)
        return summarize(events, outcome, request)

    def _config(self, request: RunRequest, private: Path, env: Mapping[str, str]) -> Any:
        (private / "env").mkdir()
        # ansible-runner reads its settings from this file only (a settings= dict is dropped).
        (private / "env" / "settings").write_text(json.dumps({"pexpect_timeout": _POLL_S}))
        config = RunnerConfig(
            private_data_dir=str(private),
            project_dir=str(request.playbook_dir),
            playbook=str(request.playbook_dir / request.playbook),
            inventory=str(request.inventory),
            limit=",".join(request.limit),
            cmdline=shlex.join(ansible_args(request)),
            extravars=dict(request.extravars) or None,
            envvars=dict(env),
            artifact_dir=str(request.artifact_dir),
            ident=request.ident,
            quiet=True,
        )
        config.prepare()
        config.env = runner_env(config.env, env)
        config.command = guard.command(str(private), list(config.command))
        return config

    def _execute(
        self, request: RunRequest, private: Path, env: Mapping[str, str], progress: Progress | None
    ) -> tuple[list[RunnerEvent], RunOutcome]:
        shutil.rmtree(request.run_dir, ignore_errors=True)  # a re-run replaces its artifacts
        request.artifact_dir.mkdir(parents=True, exist_ok=True)
        events: list[RunnerEvent] = []

        def on_event(raw: dict[str, Any]) -> bool:
            event = RunnerEvent.parse(raw)
            events.append(event)
            if progress is not None and event.kind == "runner_on_start":
                progress(redact(f"{event.host}: {event.task}"))
            return True

        tag = str(private)
        started = _clock()
        timed_out: list[bool] = []

        def out_of_time() -> bool:
            if request.timeout_s is None or _clock() - started <= request.timeout_s:
                return False
            if not timed_out:
                _end_run(tag, next((e.pid for e in events if e.pid), None))
                timed_out.append(True)
            return True  # ansible-runner then stops waiting: status "canceled"

        config = self._config(request, private, env)
        runner = Runner(config, event_handler=on_event, cancel_callback=out_of_time)
        try:
            status, rc = runner.run()
        except BaseException:
            _end_run(tag, next((e.pid for e in events if e.pid), None))
            raise
        log = request.run_dir / "stdout"
        outcome = RunOutcome(
            runner_status="timeout" if timed_out else str(status),
            rc=rc if isinstance(rc, int) else None,
            duration_s=_clock() - started,
            log_path=str(log),
            log_tail=redact(log_tail(log)),
        )
        return events, outcome
