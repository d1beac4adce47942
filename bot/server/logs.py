"""Where a reader of the bot's comments finds a run's full log.  Pure.

Theory of operation
-------------------
A comment links the full log of its dry-run or apply, never a path on the machine that
ran it (nobody reading GitHub can open that):

- on GitHub Actions, the workflow run (``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/
  runs/$GITHUB_RUN_ID``), whose page holds the job's log and its artifacts;
- under ``infrabot serve`` with ``INFRABOT_PUBLIC_URL`` set, the server's own
  ``/logs/<token>/<path>``, where ``token`` is an HMAC of the path under the webhook
  secret: a capability only a reader of the comment holds; the server checks it in
  constant time and serves only files under the artifacts folder (``read_log``);
- on the local forge, the log's path relative to the repository (its reader has it);
- otherwise no link at all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

PUBLIC_URL_ENV = "INFRABOT_PUBLIC_URL"
_SECRET_ENV = "INFRABOT_WEBHOOK_SECRET"  # bot.server.settings.SECRET_ENV (no import cycle)
MAX_LOG = 20 * 1024 * 1024

LogLink = Callable[[str | None], str | None]


def log_token(secret: str, relative: str) -> str:
    mac = hmac.new(secret.encode(), b"infrabot-log:" + relative.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def log_link(environ: Mapping[str, str], forge: str, root: Path, artifacts: Path) -> LogLink:
    """How this process links a log at a local path (see the module's docstring)."""
    server, repo, run = (
        environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if environ.get("GITHUB_ACTIONS") == "true" and server and repo and run.isdigit():
        url = f"{server.rstrip('/')}/{quote(repo)}/actions/runs/{run}"
        return lambda path: url if path else None
    public, secret = environ.get(PUBLIC_URL_ENV, "").rstrip("/"), environ.get(_SECRET_ENV, "")
    if public.startswith(("https://", "http://")) and secret:
        return lambda path: _served(public, secret, artifacts, path) if path else None
    if forge == "local":
        return lambda path: _relative(root, path) if path else None
    return lambda _path: None


def _served(public: str, secret: str, artifacts: Path, path: str) -> str | None:
    try:
        relative = Path(path).resolve().relative_to(artifacts.resolve()).as_posix()
    except ValueError:
        return None
    return f"{public}/logs/{log_token(secret, relative)}/{quote(relative)}"


def _relative(root: Path, path: str) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def read_log(artifacts: Path, secret: str | None, token: str, relative: str) -> bytes | None:
    """The log the link names, or None (a wrong token, a path outside, no such file)."""
    if not secret or not hmac.compare_digest(token, log_token(secret, relative)):
        return None
    base = artifacts.resolve()
    try:
        target = (base / relative).resolve()
        target.relative_to(base)
    except (ValueError, OSError):
        return None
    if not target.is_file():
        return None
    with target.open("rb") as handle:  # a huge log: its end, where the errors are
        handle.seek(max(target.stat().st_size - MAX_LOG, 0))
        return handle.read()
