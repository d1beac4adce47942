"""What the rest of the bot asks of a playbook runner, and the runner's one-method interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.model import DryRun, RunStatus

Progress = Callable[[str], None]


class RunRequest(BaseModel):
    """One ansible-playbook run: a dry-run (``check``) or an apply, limited to ``limit``.

    ``extravars`` travel on the command line and land in the run's artifacts: never put a
    secret there (secrets belong in the inventory or vault files, where ``no_log`` hides them).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook_dir: Path
    playbook: str = "site.yml"
    inventory: Path
    limit: tuple[str, ...]
    check: bool
    artifact_dir: Path
    ident: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=128)
    extravars: dict[str, str] = Field(default_factory=dict)
    head_sha: str = ""
    base_sha: str = ""
    timeout_s: int | None = Field(default=None, gt=0)
    """Kill the run after this many seconds (its hosts are then in an unknown state)."""

    @property
    def run_dir(self) -> Path:
        """Where ansible-runner keeps this run's artifacts (``stdout``, ``job_events/``...)."""
        return self.artifact_dir / self.ident


class PlaybookRunner(Protocol):
    def run(self, request: RunRequest, progress: Progress | None = None) -> DryRun: ...


def skipped_run(request: RunRequest) -> DryRun:
    """No host is affected: nothing to run, and nothing is unknown."""
    return DryRun(
        head_sha=request.head_sha,
        base_sha=request.base_sha,
        status=RunStatus.SKIPPED,
        hosts=(),
        check_mode=request.check,
    )
