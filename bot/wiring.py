"""Composing the real parts into one ``Services`` value (the only place that does)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import CONFIG_FILE, Config, Paths, load_config
from bot.engines.auto import AutoEngine
from bot.engines.base import Engine
from bot.engines.offline import OfflineEngine
from bot.errors import InputError
from bot.estate import Estate
from bot.execute import AnsibleRunner, nginx_test
from bot.flow.records import Records
from bot.flow.services import Services
from bot.flow.verify import LocalVerifier
from bot.forge.base import ConversationForge, Forge, Permission
from bot.forge.github.forge import GitHubForge
from bot.forge.github.settings import auth_from_env
from bot.forge.github.stores import github_stores, on_github
from bot.forge.local import LocalForge
from bot.gitrepo import GitRepo
from bot.ledger import EstateLock, IntentStore, Trajectory
from bot.ledger.stores import IntentLedger, LockStore, RunStore, TrajectoryStore
from bot.localestate import LocalEstate
from bot.server.logs import log_link
from bot.validate.cache import ValidationCache

if TYPE_CHECKING:
    from bot.engines.claude import ClaudeEngine


def local_preflight(runtime_root: Path) -> Callable[[Estate, tuple[str, ...]], str | None]:
    def preflight(estate: Estate, hosts: tuple[str, ...]) -> str | None:
        local = [h for h in estate.hosts() if h.connection == "local" and h.name in hosts]
        if not local:
            return None
        status = LocalEstate(runtime_root, local).status()
        down = [
            f"{host.name}/{svc.name}"
            for host in status.hosts
            for svc in status.services_of(host)
            if not svc.running
        ]
        if down:
            return (
                f"the local estate is not running ({', '.join(down)} stopped): "
                "run `infrabot estate up` and try again"
            )
        return None

    return preflight


def conversation(svc: Services) -> ConversationForge:
    """The forge as the CLI drives it for people (the local forge): opening issues,
    commenting, reviewing.  On GitHub people do that in GitHub itself."""
    if not isinstance(svc.forge, LocalForge):
        raise InputError(
            f"this command acts for people on the local forge; the forge configured in "
            f"{CONFIG_FILE} is {svc.config.forge!r}: do it on the forge itself"
        )
    return svc.forge


def _forge(config: Config, paths: Paths, root: Path) -> Forge:
    """The forge ``infrabot.yaml`` names: the local one, or GitHub (credentials from the
    environment: a token or a GitHub App installation)."""
    if config.forge == "github" and config.github is not None:
        return GitHubForge(config.github, auth_from_env(os.environ))
    users = {name: Permission(level) for name, level in config.users.items()}
    return LocalForge(paths.forge_db, users, root)


def claude_engine(config: Config, environ: dict[str, str]) -> ClaudeEngine:
    # Imported here: the Anthropic SDK takes about 1.5 s to import, and most commands
    # (validate above all) never draft with Claude.
    from bot.engines.claude import ClaudeEngine, ClaudeSettings, Limits

    c = config.claude
    limits = Limits(
        max_turns=c.max_turns,
        max_tokens=c.max_tokens,
        max_cost_usd=c.max_cost_usd,
        max_seconds=c.max_seconds,
        max_output_tokens=c.max_output_tokens,
    )
    settings = ClaudeSettings(
        model=c.model,
        limits=limits,
        stream=c.stream,
        base_url=environ.get("ANTHROPIC_BASE_URL") or None,
    )
    return ClaudeEngine(settings, api_key=environ.get("ANTHROPIC_API_KEY") or None)


def make_engine(config: Config, environ: dict[str, str]) -> Engine:
    """The engine infrabot.yaml names: offline, claude, or auto (Claude only with a key)."""
    if config.engine == "claude":
        return claude_engine(config, environ)
    if config.engine == "auto":
        has_key = bool(environ.get("ANTHROPIC_API_KEY"))
        return AutoEngine(OfflineEngine(), claude_engine(config, environ) if has_key else None)
    return OfflineEngine()


@dataclass(frozen=True)
class Stores:
    lock: LockStore
    intents: IntentLedger
    records: RunStore
    trajectory: TrajectoryStore


def make_stores(paths: Paths, forge: Forge) -> Stores:
    """Where the state lives (docs/adr/0013): on GitHub when the forge is GitHub and
    ``github.stores`` says so (the default: Actions runners keep nothing), else files and
    SQLite under ``.infrabot/``.  The alert record follows the same switch
    (``bot.alerts.services.alert_record``)."""
    if on_github(forge):
        found = github_stores(forge)
        return Stores(found.lock, found.intents, found.records, found.trajectory)
    return Stores(
        lock=EstateLock(paths.ledger_db),
        intents=IntentStore(paths.intents),
        records=Records(paths.runs),
        trajectory=Trajectory(paths.trajectories),
    )


def open_services(root: Path, progress: Callable[[str], None]) -> Services:
    git = GitRepo(root)
    root = git.path
    config = load_config(root)
    paths = Paths(root)
    paths.home.mkdir(exist_ok=True)
    forge = _forge(config, paths, root)
    stores = make_stores(paths, forge)
    return Services(
        root=root,
        config=config,
        paths=paths,
        forge=forge,
        engine=make_engine(config, dict(os.environ)),
        runner=AnsibleRunner(strategy=config.ansible_strategy),
        git=git,
        trajectory=stores.trajectory,
        lock=stores.lock,
        intents=stores.intents,
        records=stores.records,
        verifier=LocalVerifier(paths.estate_runtime),
        nginx_test=nginx_test,
        preflight=local_preflight(paths.estate_runtime),
        progress=progress,
        cache=ValidationCache(paths.validation_cache),
        remote=forge if isinstance(forge, GitHubForge) else None,
        log_link=log_link(os.environ, config.forge, root, paths.artifacts),
    )
