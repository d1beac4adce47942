"""Repository configuration (``infrabot.yaml``) and the bot's working paths.

Read once, at the entry point, into a frozen model; nothing reads settings at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import InputError

CONFIG_FILE = "infrabot.yaml"
UserName = str


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    forge: Literal["local"] = "local"
    engine: Literal["offline"] = "offline"
    base_branch: str = "main"
    users: dict[UserName, Literal["admin", "write", "read"]] = Field(default_factory=dict)


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
