"""What ``infrabot doctor`` concludes from what it found.  Pure.

Theory of operation
-------------------
The probe (``probe.py``) gathers facts — the config, which credentials the environment
holds, what GitHub answered — into a frozen ``Setup``; ``diagnose`` turns them into one
``Line`` per check: ``ok``, ``problem`` (with the fix), or ``n/a`` (does not apply to
this setup, or an earlier problem hides it).  A check the doctor could not complete is a
problem, not a pass: a setup counts as safe only when it was seen to be (for example
branch protection read with an admin's credentials).  No fact holds a secret; the lines
name environment variables, never their values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.flow.checks import DRY_RUN, VALIDATE
from bot.server.alerts import BASIC_ENV as ALERTS_BASIC_ENV
from bot.server.alerts import TOKEN_ENV as ALERTS_TOKEN_ENV
from bot.server.logs import PUBLIC_URL_ENV
from bot.server.settings import SECRET_ENV

REQUIRED_STATUSES = (VALIDATE, DRY_RUN)
"""The commit statuses the bot sets on a pull request's head (``bot/flow/checks.py``)."""
WORKFLOWS = (
    "infrabot-tickets.yml",
    "infrabot-pull-requests.yml",
    "infrabot-apply.yml",
    "infrabot-check.yml",
    "infrabot-alerts.yml",
    "infrabot-validation-cache.yml",
)
"""The workflows that run the bot on GitHub Actions (``.github/workflows/``)."""
APP_PERMISSIONS = ("contents", "issues", "pull_requests", "statuses")
"""What the bot writes: branches, issue comments, pull requests, commit statuses."""
MIN_SECRET = 20

Verdict = Literal["ok", "problem", "n/a"]
Mode = Literal["actions", "serve"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Frozen):
    check: str
    verdict: Verdict
    message: str
    fix: str = ""


class Protection(_Frozen):
    """The default branch's protection as the credentials could see it."""

    branch: str
    protected: bool
    contexts: tuple[str, ...] = ()
    approvals: int | None = None
    """Required approving reviews; None when there is no review rule or it was not readable."""
    readable: bool = True
    """False: only the branch was readable (needs admin for the whole rule)."""


class GitHubFacts(_Frozen):
    repository: str
    auth: Literal["token", "app"] | None = None
    auth_error: str | None = None
    """Why the environment's credentials are unusable (none set, half an App, ...)."""
    api_error: str | None = None
    """Why GitHub did not accept them, or did not answer."""
    api_unreachable: bool = False
    login: str | None = None
    bot_login: str | None = None
    """``github.bot_login`` from infrabot.yaml (how the bot knows its own comments)."""
    app_permissions: dict[str, str] | None = None
    repo_write: bool | None = None
    """The token's user may write to the repository (None: GitHub did not say)."""
    token_scopes: tuple[str, ...] | None = None
    """A classic token's OAuth scopes (None: a fine-grained or workflow token)."""
    private: bool = True
    workflows: tuple[str, ...] | None = None
    workflows_error: str | None = None
    protection: Protection | None = None
    protection_error: str | None = None


class AlertIntake(_Frozen):
    """What the environment holds for ``/alerts`` (lengths and shape only, never a value)."""

    token_length: int = 0
    basic: Literal["unset", "ok", "malformed"] = "unset"
    basic_password_length: int = 0


class Setup(_Frozen):
    mode: Mode
    config_error: str | None = None
    forge: Literal["local", "github"] = "local"
    repository: str | None = None
    users: dict[str, str] = {}
    secret_length: int = 0
    public_url: str = ""
    """``INFRABOT_PUBLIC_URL``: where ``infrabot serve`` is reached (its log links)."""
    github: GitHubFacts | None = None
    alerts: AlertIntake = AlertIntake()


def _ok(check: str, message: str) -> Line:
    return Line(check=check, verdict="ok", message=message)


def _problem(check: str, message: str, fix: str) -> Line:
    return Line(check=check, verdict="problem", message=message, fix=fix)


def _na(check: str, message: str) -> Line:
    return Line(check=check, verdict="n/a", message=message)


def diagnose(setup: Setup) -> list[Line]:
    config = check_config(setup)
    if config.verdict != "ok":
        return [config]
    serving = [check_alert_intake(setup.alerts)] if setup.mode == "serve" else []
    if setup.forge == "local" or setup.github is None:
        return [config, *_local(setup), *serving]
    facts = setup.github
    lines = [config, check_credentials(facts)]
    reached = lines[-1].verdict == "ok"
    lines.append(check_permissions(facts) if reached else _na("permissions", "not checked"))
    lines.append(check_secret(setup.mode, setup.secret_length))
    if setup.mode == "serve":
        lines.append(check_public_url(setup.public_url))
    lines.append(check_workflows(setup.mode, facts) if reached else _na("workflows", "not checked"))
    lines.append(check_protection(facts) if reached else _na("protection", "not checked"))
    return [*lines, *serving]


def check_config(setup: Setup) -> Line:
    if setup.config_error:
        return _problem(
            "config", setup.config_error, "correct infrabot.yaml (README: Run it on GitHub)"
        )
    if setup.forge == "local":
        return _ok("config", "infrabot.yaml is valid; forge: local")
    return _ok("config", f"infrabot.yaml is valid; forge: github, repository {setup.repository}")


def _local(setup: Setup) -> list[Line]:
    admins = [u for u, role in setup.users.items() if role == "admin"]
    writers = [u for u, role in setup.users.items() if role in ("admin", "write")]
    users = (
        _ok("users", f"{len(setup.users)} local user(s); {', '.join(admins)} may /unlock")
        if admins and len(writers) >= 2
        else _problem(
            "users",
            "a change needs an author and a different approver with write permission",
            "add users with roles admin and write under users: in infrabot.yaml",
        )
    )
    github = "on the local forge"
    return [
        users,
        _na("credentials", f"{github}: no GitHub credentials are used"),
        _na("webhook secret", f"{github}: no webhooks ({SECRET_ENV} is for infrabot serve)"),
        _na("workflows", f"{github}: the infrabot command runs each step"),
        _na("protection", f"{github}: the bot's gate enforces reviews and statuses itself"),
    ]


def check_credentials(facts: GitHubFacts) -> Line:
    if facts.auth_error:
        return _problem(
            "credentials",
            facts.auth_error,
            "set INFRABOT_GITHUB_TOKEN, or INFRABOT_APP_ID, INFRABOT_APP_INSTALLATION_ID and "
            "INFRABOT_APP_PRIVATE_KEY, in the environment",
        )
    kind = "the GitHub App" if facts.auth == "app" else "the token"
    if facts.api_error and facts.api_unreachable:
        return _problem(
            "credentials",
            facts.api_error,
            "check github.api_url in infrabot.yaml and that this machine reaches it",
        )
    if facts.api_error:
        fix = (
            "check the App id, the installation id and the private key (Settings → "
            "Developer settings → GitHub Apps)"
            if facts.auth == "app"
            else "create a new token with access to the repository and set it again"
        )
        return _problem("credentials", f"{kind} — {facts.api_error}", fix)
    if facts.auth == "token" and not facts.login and not facts.bot_login:
        return _problem(
            "credentials",
            "GitHub accepted the token but will not say whose it is (GET /user is refused, "
            "as for a workflow's GITHUB_TOKEN): the bot could not tell its comments apart",
            "set github.bot_login in infrabot.yaml (github-actions[bot] for GITHUB_TOKEN)",
        )
    who = f" as {facts.login or facts.bot_login}" if facts.login or facts.bot_login else ""
    return _ok("credentials", f"GitHub accepted {kind}{who} for {facts.repository}")


def check_permissions(facts: GitHubFacts) -> Line:
    if facts.auth == "app":
        granted = facts.app_permissions or {}
        missing = [p for p in APP_PERMISSIONS if granted.get(p) != "write"]
        if missing:
            return _problem(
                "permissions",
                f"the App cannot write {', '.join(missing)}",
                "in the App's settings → Permissions, give "
                + ", ".join(f"{p.replace('_', ' ')}: read and write" for p in missing)
                + "; then accept the new permissions on the installation",
            )
        return _ok("permissions", "the App writes " + ", ".join(APP_PERMISSIONS))
    if facts.repo_write is False:
        return _problem(
            "permissions",
            f"{facts.login or 'the token user'} cannot write to {facts.repository}",
            "give the token's user the write role on the repository",
        )
    scopes = facts.token_scopes
    if scopes is not None:
        needed = "public_repo" if not facts.private else "repo"
        if "repo" not in scopes and needed not in scopes:
            shown = ", ".join(scopes) or "none"
            return _problem(
                "permissions",
                f"the classic token's scopes ({shown}) do not include {needed}",
                f"create a token with the {needed} scope, or a fine-grained token",
            )
    if facts.repo_write is None:
        return _ok(
            "permissions",
            "a workflow token: each job's permissions: block grants what it writes",
        )
    return _ok("permissions", "the token's user may write issues, pull requests and statuses")


def check_secret(mode: Mode, length: int) -> Line:
    if mode == "actions":
        if length:
            return _ok("webhook secret", f"{SECRET_ENV} is set (needed only by infrabot serve)")
        return _na("webhook secret", "GitHub Actions receives no webhooks")
    make = "python -c 'import secrets; print(secrets.token_hex(32))'"
    if not length:
        return _problem(
            "webhook secret",
            f"{SECRET_ENV} is not set: infrabot serve refuses every delivery (401)",
            f"make one with {make}, set it in the webhook's settings and in {SECRET_ENV}",
        )
    if length < MIN_SECRET:
        return _problem(
            "webhook secret",
            f"{SECRET_ENV} is only {length} characters: it can be guessed",
            f"make a longer one with {make}",
        )
    return _ok("webhook secret", f"{SECRET_ENV} is set ({length} characters)")


def check_alert_intake(alerts: AlertIntake) -> Line:
    """``infrabot serve``'s ``/alerts``: fails closed, so no credential means no intake."""
    make = "python -c 'import secrets; print(secrets.token_hex(32))'"
    if alerts.basic == "malformed":
        return _problem(
            "alert intake",
            f"{ALERTS_BASIC_ENV} is not user:password: Alertmanager's basic_auth cannot match it",
            f"set {ALERTS_BASIC_ENV} to the basic_auth username and password, joined by ':'",
        )
    lengths = [alerts.token_length] if alerts.token_length else []
    if alerts.basic == "ok":
        lengths.append(alerts.basic_password_length)
    if not lengths:
        return _na(
            "alert intake",
            f"neither {ALERTS_TOKEN_ENV} nor {ALERTS_BASIC_ENV} is set: /alerts refuses every "
            "post (set one for Alertmanager's http_config)",
        )
    if min(lengths) < MIN_SECRET:
        return _problem(
            "alert intake",
            f"the /alerts credential is only {min(lengths)} characters: it can be guessed",
            f"make a longer one with {make}",
        )
    how = " and ".join(
        what
        for what, present in (
            ("a bearer token", alerts.token_length > 0),
            ("basic auth", alerts.basic == "ok"),
        )
        if present
    )
    return _ok("alert intake", f"/alerts accepts {how} (Alertmanager's http_config)")


def check_public_url(url: str) -> Line:
    if not url:
        return _ok(
            "log links",
            f"{PUBLIC_URL_ENV} is not set: comments carry no link to the full log",
        )
    if not url.startswith("https://"):
        return _problem(
            "log links",
            f"{PUBLIC_URL_ENV} is not an https:// URL: log links would travel in clear text",
            "serve it behind TLS and set the https:// URL GitHub's readers reach it at",
        )
    return _ok("log links", f"comments link full logs under {url.rstrip('/')}/logs/")


def check_workflows(mode: Mode, facts: GitHubFacts) -> Line:
    if facts.workflows is None:
        return _problem(
            "workflows",
            f"could not list the workflows: {facts.workflows_error}",
            "give the credentials Actions: read, or check .github/workflows/ by hand",
        )
    present = [w for w in WORKFLOWS if f".github/workflows/{w}" in facts.workflows]
    if mode == "serve":
        if present:
            return _problem(
                "workflows",
                f"{', '.join(present)} run beside infrabot serve: each event is handled twice",
                "disable them (Actions → the workflow → Disable) or delete them",
            )
        return _ok("workflows", "no infrabot workflow runs beside infrabot serve")
    missing = [w for w in WORKFLOWS if w not in present]
    if missing:
        return _problem(
            "workflows",
            f"missing on the default branch: {', '.join(missing)}",
            "copy them from this repository's .github/workflows/ to the default branch",
        )
    return _ok("workflows", f"all {len(WORKFLOWS)} infrabot workflows are on the default branch")


def check_protection(facts: GitHubFacts) -> Line:
    rule = facts.protection
    settings = "Settings → Branches"
    if rule is None:
        return _problem(
            "protection",
            f"could not read the default branch: {facts.protection_error}",
            "run infrabot doctor with an admin's token (INFRABOT_GITHUB_TOKEN)",
        )
    if not rule.protected:
        return _problem(
            "protection",
            f"{rule.branch} is not protected: anyone with write can merge without the bot",
            f"in {settings}, protect {rule.branch}: require the statuses "
            f"{' and '.join(REQUIRED_STATUSES)} and one approving review",
        )
    missing = [c for c in REQUIRED_STATUSES if c not in rule.contexts]
    if missing:
        return _problem(
            "protection",
            f"{rule.branch} does not require the status {' and '.join(missing)}",
            f"in {settings}, require the status checks {' and '.join(missing)} on {rule.branch}",
        )
    if not rule.readable:
        return _problem(
            "protection",
            f"{rule.branch} requires the bot's statuses; its review rule is readable only "
            "by an admin",
            "run infrabot doctor with an admin's token in INFRABOT_GITHUB_TOKEN (or give "
            "the App Administration: read-only) to check it",
        )
    if not rule.approvals:
        return _problem(
            "protection",
            f"{rule.branch} requires no approving review",
            f"in {settings}, require a pull request with at least one approval on {rule.branch}",
        )
    return _ok(
        "protection",
        f"{rule.branch} requires {' and '.join(REQUIRED_STATUSES)} and "
        f"{rule.approvals} approving review(s)",
    )


def needs_fixing(lines: list[Line]) -> bool:
    return any(line.verdict == "problem" for line in lines)


_MARK = {"ok": "ok     ", "problem": "PROBLEM", "n/a": "n/a    "}


def render_lines(lines: list[Line]) -> str:
    """One line per check; a problem carries its fix after an arrow."""
    out = []
    for line in lines:
        fix = f" → fix: {line.fix}" if line.fix else ""
        out.append(f"{_MARK[line.verdict]} {line.check} — {line.message}{fix}")
    verdict = "needs fixing" if needs_fixing(lines) else "ready"
    return "\n".join([*out, f"infrabot doctor: {verdict}"])
