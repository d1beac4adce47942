"""How to reach GitHub: the repository, the API, the credentials and the patience.

Secrets come only from the environment (``auth_from_env``); they are held as
``SecretStr`` so a model dump or a log line never shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.errors import InputError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenAuth(_Frozen):
    kind: Literal["token"] = "token"
    token: SecretStr


class AppAuth(_Frozen):
    """A GitHub App, acting through one installation (the bot is ``<slug>[bot]``)."""

    kind: Literal["app"] = "app"
    app_id: int
    private_key: SecretStr
    installation_id: int


class GitHubSettings(_Frozen):
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")  # Rust: $ = the end
    api_url: str = "https://api.github.com"
    bot_login: str | None = None
    """The bot's own login; asked of GitHub once when not given."""
    timeout: int = 15
    """Seconds per request; a request that times out is retried like a 5xx."""
    retries: int = 6
    backoff: float = 0.5
    """urllib3's backoff factor between retries of a 5xx or a timeout."""
    secondary_rate_wait: float = 60
    max_rate_limit_wait: float = 900
    """Longest wait for a rate limit to reset; beyond it the call fails with a clear error."""
    seconds_between_requests: float = 0.25
    seconds_between_writes: float = 1.0
    """GitHub asks for a pause between writes, which keeps the secondary limits away."""
    stores: Literal["github", "local"] = "github"
    """Where the bot keeps its state (``docs/adr/0013``): ``github`` (refs, a ledger branch,
    the PR's status comment), which Actions runners need since their disks vanish; ``local``
    (files under ``.infrabot/``), enough for ``infrabot serve`` on one machine."""
    ledger_branch: str = Field(
        default="infrabot/ledger", pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"
    )
    """The branch that holds trajectories, plans and the estate's records; never merged."""
    lease_minutes: int = Field(default=360, ge=1)
    """How long a lock or an apply intent held on another machine counts as running (by
    default Actions' longest job); after it, the holder is taken as gone."""


def auth_from_env(environ: Mapping[str, str]) -> TokenAuth | AppAuth:
    """``INFRABOT_GITHUB_TOKEN`` (or ``GITHUB_TOKEN``), or the three ``INFRABOT_APP_*``."""
    app = [environ.get(f"INFRABOT_APP_{k}", "") for k in ("ID", "PRIVATE_KEY", "INSTALLATION_ID")]
    if all(app):
        if not (app[0].isdigit() and app[2].isdigit()):
            raise InputError("INFRABOT_APP_ID and INFRABOT_APP_INSTALLATION_ID must be numbers")
        return AppAuth(
            app_id=int(app[0]), private_key=SecretStr(app[1]), installation_id=int(app[2])
        )
    if any(app):
        raise InputError(
            "set all of INFRABOT_APP_ID, INFRABOT_APP_PRIVATE_KEY and "
            "INFRABOT_APP_INSTALLATION_ID, or none of them"
        )
    token = environ.get("INFRABOT_GITHUB_TOKEN") or environ.get("GITHUB_TOKEN")
    if not token:
        raise InputError(
            "no GitHub credentials: set INFRABOT_GITHUB_TOKEN (or GITHUB_TOKEN), "
            "or the INFRABOT_APP_* variables of a GitHub App"
        )
    return TokenAuth(token=SecretStr(token))
