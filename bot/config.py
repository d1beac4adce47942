"""Repository configuration (``infrabot.yaml``) and the bot's working paths.

Read once, at the entry point, into a frozen model; nothing reads settings at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import InputError
from bot.forge.github.settings import GitHubSettings

CONFIG_FILE = "infrabot.yaml"
UserName = str


class ClaudeConfig(BaseModel):
    """The Claude engine's model and caps per ticket (the key comes from the environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "claude-sonnet-4-5"
    max_turns: int = Field(default=16, ge=1, le=100)
    max_tokens: int = Field(default=400_000, ge=1000)
    max_cost_usd: float = Field(default=0.50, gt=0)
    max_seconds: float = Field(default=300.0, gt=0)
    max_output_tokens: int = Field(default=4096, ge=256, le=64_000)
    stream: bool = False


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    forge: Literal["local", "github"] = "local"
    engine: Literal["offline", "claude", "auto"] = "offline"
    claude: ClaudeConfig = Field(default_factory=ClaudeConfig)
    base_branch: str = "main"
    users: dict[UserName, Literal["admin", "write", "read"]] = Field(default_factory=dict)
    """Local forge only: who may do what (on GitHub, permissions come from GitHub)."""
    github: GitHubSettings | None = None
    """Where the repository lives on GitHub (``forge: github``); secrets come from the
    environment, never from this file."""
    ansible_strategy: Literal["free", "mitogen"] = "free"
    """``mitogen``: run plays with Mitogen's ``mitogen_free`` (pip install 'infrabot[mitogen]')."""

    @model_validator(mode="after")
    def _github_needs_a_repository(self) -> Self:
        if self.forge == "github" and self.github is None:
            raise ValueError("forge github needs a github: section with repository: OWNER/NAME")
        return self


def load_config(root: Path) -> Config:
    path = root / CONFIG_FILE
    if not path.exists():
        return Config()
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        return Config.model_validate(data)
    except YAMLError as exc:
        raise InputError(f"{CONFIG_FILE}: malformed YAML: {str(exc).splitlines()[0]}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{CONFIG_FILE}: {where}: {err['msg']}") from exc


@dataclass(frozen=True)
class Paths:
    """Where the bot keeps its state beside the repository (all under ``.infrabot/``)."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / ".infrabot"

    @property
    def forge_db(self) -> Path:
        return self.home / "forge.db"

    @property
    def ledger_db(self) -> Path:
        return self.home / "ledger.db"

    @property
    def intents(self) -> Path:
        return self.home / "intents"

    @property
    def trajectories(self) -> Path:
        return self.home / "trajectories"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    @property
    def estate_runtime(self) -> Path:
        return self.home / "estate"

    @property
    def scratch(self) -> Path:
        return self.home / "tmp"

    @property
    def validation_cache(self) -> Path:
        """Per-file validation verdicts (bot/validate/cache.py); safe to delete or restore."""
        return self.home / "cache" / "validation.sqlite"
