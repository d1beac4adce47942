"""What ``infrabot doctor`` finds: the config, the environment, and GitHub's answers.

Every question to GitHub goes through PyGithub (the same client and retries as the
forge) and is asked with the credentials the bot will use.  A refusal becomes a fact
(``api_error``, ``protection_error``), never an exception; nothing here keeps or prints
a credential.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

import github
import jwt
import requests
from github import Auth, GithubException, GithubIntegration, GithubRetry
from github.Repository import Repository

from bot.config import load_config
from bot.doctor.checks import AlertIntake, GitHubFacts, Mode, Protection, Setup
from bot.errors import InputError
from bot.forge.github.settings import AppAuth, GitHubSettings, TokenAuth, auth_from_env
from bot.server.alerts import BASIC_ENV as ALERTS_BASIC_ENV
from bot.server.alerts import TOKEN_ENV as ALERTS_TOKEN_ENV
from bot.server.logs import PUBLIC_URL_ENV
from bot.server.settings import SECRET_ENV

T = TypeVar("T")


class Refused(Exception):
    """GitHub said no (or nothing); the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def alert_intake(environ: Mapping[str, str]) -> AlertIntake:
    """The shape of ``/alerts``' credentials in ``environ`` (lengths, never the values)."""
    basic = environ.get(ALERTS_BASIC_ENV, "")
    user, colon, password = basic.partition(":")
    shape = "unset" if not basic else "ok" if colon and user and password else "malformed"
    return AlertIntake(
        token_length=len(environ.get(ALERTS_TOKEN_ENV, "")),
        basic=shape,
        basic_password_length=len(password) if shape == "ok" else 0,
    )


def examine(root: Path, mode: Mode, environ: Mapping[str, str]) -> Setup:
    secret = len(environ.get(SECRET_ENV, ""))
    alerts = alert_intake(environ)
    public_url = environ.get(PUBLIC_URL_ENV, "")
    try:
        config = load_config(root)
    except InputError as exc:
        return Setup(mode=mode, config_error=str(exc), secret_length=secret)
    if config.forge == "local" or config.github is None:
        return Setup(
            mode=mode,
            forge="local",
            users=dict(config.users),
            secret_length=secret,
            alerts=alerts,
        )
    return Setup(
        mode=mode,
        forge="github",
        repository=config.github.repository,
        secret_length=secret,
        public_url=public_url,
        github=examine_github(config.github, environ),
        alerts=alerts,
    )


def examine_github(settings: GitHubSettings, environ: Mapping[str, str]) -> GitHubFacts:
    facts = GitHubFacts(repository=settings.repository, bot_login=settings.bot_login)
    try:
        auth = auth_from_env(environ)
    except InputError as exc:
        return facts.model_copy(update={"auth_error": str(exc)})
    facts = facts.model_copy(update={"auth": auth.kind})
    try:
        gh, found = _connect(settings, auth)
        repo = _ask(lambda: _loaded(gh.get_repo(settings.repository)))
    except Refused as exc:
        why = {"api_error": _why(exc, settings.repository), "api_unreachable": exc.status == 0}
        return facts.model_copy(update=why)
    found["private"] = bool(repo.private)
    if isinstance(auth, TokenAuth):
        found.update(_token_facts(gh, repo))
    found.update(_workflows(repo))
    found.update(_protection(repo))
    return facts.model_copy(update=found)


def _connect(
    settings: GitHubSettings, auth: TokenAuth | AppAuth
) -> tuple[github.Github, dict[str, object]]:
    base = settings.api_url.rstrip("/")
    retry = GithubRetry(total=min(settings.retries, 3), backoff_factor=settings.backoff)
    found: dict[str, object] = {}
    if isinstance(auth, AppAuth):
        app = Auth.AppAuth(auth.app_id, auth.private_key.get_secret_value())
        integration = GithubIntegration(auth=app, base_url=base, retry=retry)
        found["login"] = _ask(lambda: f"{integration.get_app().slug}[bot]")
        installation = _ask(lambda: integration.get_app_installation(auth.installation_id))
        found["app_permissions"] = dict(_ask(lambda: installation.permissions) or {})
        credentials: Auth.Auth = Auth.AppInstallationAuth(app, auth.installation_id)
    else:
        credentials = Auth.Token(auth.token.get_secret_value())
    gh = github.Github(
        auth=credentials,
        base_url=base,
        timeout=settings.timeout,
        retry=retry,
        seconds_between_requests=0,
        seconds_between_writes=0,
        lazy=True,
    )
    return gh, found


def _loaded(repo: Repository) -> Repository:
    _ = repo.default_branch  # lazy: fetch now, so a refusal is read here
    return repo


def _token_facts(gh: github.Github, repo: Repository) -> dict[str, object]:
    found: dict[str, object] = {}
    permissions = repo.permissions
    if permissions is not None:
        found["repo_write"] = bool(permissions.push)
    scopes = gh.oauth_scopes  # from the last answer's X-OAuth-Scopes (classic tokens only)
    if scopes is not None:
        found["token_scopes"] = tuple(s for s in scopes if s)
    # a workflow's token may not read /user; the repository answered, which is enough
    with suppress(Refused):
        found["login"] = _ask(lambda: gh.get_user().login)
    return found


def _workflows(repo: Repository) -> dict[str, object]:
    try:
        paths = _ask(lambda: tuple(w.path for w in repo.get_workflows()))
    except Refused as exc:
        return {"workflows_error": str(exc)}
    return {"workflows": paths}


def _protection(repo: Repository) -> dict[str, object]:
    name = repo.default_branch
    try:
        branch = _ask(lambda: repo.get_branch(name))
    except Refused as exc:
        return {"protection_error": f"reading {name}: {exc}"}
    if not branch.protected:
        return {"protection": Protection(branch=name, protected=False)}
    try:
        rule = _ask(branch.get_protection)
    except Refused:
        seen = _ask(lambda: branch.raw_data.get("protection") or {})
        checks = seen.get("required_status_checks") or {}
        contexts = tuple(checks.get("contexts") or ())
        return {
            "protection": Protection(branch=name, protected=True, contexts=contexts, readable=False)
        }
    checks = rule.required_status_checks
    reviews = rule.required_pull_request_reviews
    return {
        "protection": Protection(
            branch=name,
            protected=True,
            contexts=tuple(checks.contexts) if checks is not None else (),
            approvals=reviews.required_approving_review_count if reviews is not None else None,
        )
    }


def _ask(call: Callable[[], T]) -> T:
    """``call()``; GitHub's refusal or silence as ``Refused`` (no credential in it)."""
    try:
        return call()
    except GithubException as exc:
        raise Refused(exc.status, _message(exc)) from None
    except requests.RequestException as exc:
        raise Refused(0, f"GitHub did not answer ({type(exc).__name__})") from None
    except (jwt.PyJWTError, ValueError):  # the App's key, read when the first JWT is signed
        raise Refused(401, "INFRABOT_APP_PRIVATE_KEY is not the App's private key (PEM)") from None


def _message(exc: GithubException) -> str:
    data = exc.data
    message = data.get("message") if isinstance(data, dict) else None
    return f"GitHub answered {exc.status}" + (f": {message}" if message else "")


def _why(exc: Refused, repository: str) -> str:
    if exc.status == 401:
        return f"GitHub refused the credentials ({exc})"
    if exc.status == 404:
        return f"{repository} is not visible to these credentials ({exc})"
    return str(exc)
