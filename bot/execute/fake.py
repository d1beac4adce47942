"""A ``PlaybookRunner`` for tests: canned results, recorded requests, no Ansible."""

from __future__ import annotations

from collections.abc import Callable

from bot.execute.request import Progress, RunRequest, skipped_run
from bot.model import DryRun, HostRecap, RunStatus, TaskResult

Respond = Callable[[RunRequest], DryRun]


class FakeRunner:
    """Answers each request with the next canned ``DryRun``, then with ``respond``, then with
    a successful run (one ok task per host).

    Like the real runner, an empty limit gives SKIPPED without using a canned value.  Canned
    values get the request's hosts, shas and mode laid over them, so a test does not have to
    repeat them.  ``requests`` holds every request received, in order.
    """

    def __init__(self, *canned: DryRun, respond: Respond | None = None) -> None:
        self._canned = list(canned)
        self._respond = respond
        self.requests: list[RunRequest] = []

    def run(self, request: RunRequest, progress: Progress | None = None) -> DryRun:
        self.requests.append(request)
        if not request.limit:
            return skipped_run(request)
        result = self._answer(request)
        for task in result.tasks:
            if progress is not None:
                progress(f"{task.host}: {task.task}")
        return result

    def _answer(self, request: RunRequest) -> DryRun:
        if self._canned:
            canned = self._canned.pop(0)
            return canned.model_copy(
                update={
                    "hosts": request.limit,
                    "head_sha": request.head_sha,
                    "base_sha": request.base_sha,
                    "check_mode": request.check,
                }
            )
        if self._respond is not None:
            return self._respond(request)
        return successful_run(request)


def successful_run(request: RunRequest) -> DryRun:
    """What a clean run of ``request`` with nothing to change looks like."""
    return DryRun(
        head_sha=request.head_sha,
        base_sha=request.base_sha,
        status=RunStatus.SUCCESSFUL,
        hosts=request.limit,
        recap=tuple(HostRecap(host=h, ok=1) for h in request.limit),
        tasks=tuple(TaskResult(host=h, task="fake task", status="ok") for h in request.limit),
        check_mode=request.check,
        log_path=str(request.run_dir / "stdout"),
    )
