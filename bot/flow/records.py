"""What the pipeline remembers between steps: a ticket's plan, a PR's last check, the
hosts whose state is unknown.  JSON files under ``.infrabot/runs``, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.estate.edit import atomic_write
from bot.model import DryRun, Plan, ValidationReport


class PrCheck(BaseModel):
    """Validation and dry-run of one PR head merged into the base tip of the time."""

    model_config = ConfigDict(frozen=True)

    pr: int
    head_sha: str
    base_sha: str
    """The base branch's tip the head was merged into for the check."""
    merge_sha: str | None = None
    """The commit of that merge (None: the head does not merge cleanly)."""
    merge_tree: str | None = None
    validation: ValidationReport
    dry_run: DryRun
    environments: tuple[str, ...] = ()
    """Environments the change touches (policy may require more approvals for some)."""


class Records:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _write(self, name: str, model: BaseModel) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / name, model.model_dump_json(indent=2))

    def save_plan(self, plan: Plan) -> None:
        self._write(f"plan-{plan.ticket}.json", plan)

    def plan(self, ticket: int) -> Plan | None:
        path = self.dir / f"plan-{ticket}.json"
        return Plan.model_validate_json(path.read_text()) if path.exists() else None

    def save_check(self, check: PrCheck) -> None:
        self._write(f"check-pr-{check.pr}.json", check)

    def check(self, pr: int) -> PrCheck | None:
        """The PR's last check; None when there is none or it does not parse (re-check)."""
        path = self.dir / f"check-pr-{pr}.json"
        try:
            return PrCheck.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return None

    def applied(self) -> str | None:
        """The commit the whole estate was last brought to (None: not known)."""
        path = self.dir / "applied.json"
        sha = json.loads(path.read_text()).get("sha") if path.exists() else None
        return str(sha) if sha else None

    def set_applied(self, sha: str | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / "applied.json", json.dumps({"sha": sha}))

    def unknown_hosts(self) -> set[str]:
        path = self.dir / "unknown-hosts.json"
        return set(json.loads(path.read_text())) if path.exists() else set()

    def set_unknown_hosts(self, hosts: set[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / "unknown-hosts.json", json.dumps(sorted(hosts)))
