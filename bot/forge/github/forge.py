"""The GitHub forge: the ``Forge`` protocol on PyGithub, plus merge, labels and pushes.

Theory of operation
-------------------
Every call goes through PyGithub, whose urllib3 ``GithubRetry`` waits out primary
rate limits (until ``x-ratelimit-reset``) and secondary ones (``retry-after``) and
retries 5xx answers and timeouts with backoff; what still fails becomes one clear
``InfrabotError`` (``InputError`` for an unknown number) that never carries the token.

The bot's identity: GitHub knows the bot as its real login (``infrabot[bot]`` for an
App, the token owner's login otherwise); the rest of the program knows it as
``BOT_LOGIN``.  This forge translates one to the other at the edge, and a *person*
whose login happens to be ``BOT_LOGIN`` is shown as ``BOT_LOGIN (a person)`` so their
comments can never pass for the bot's.  Permissions come from the collaborators API
every time they are asked (never from a payload's ``author_association``); a bot
account has none.

Writes are idempotent: comments are found by author and hidden topic and edited in
place, statuses are set per (sha, context), an open PR per branch is updated.  A merge
names the head it expects: GitHub answers 409 if the head moved, and nothing is merged;
a PR that is no longer open is refused, as by every forge.

A bot-drafted PR remembers its issue in a hidden marker at the top of its body; a
person's PR has none (a person could write any number there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import github
import requests
from github import Auth, GithubException, GithubIntegration, GithubRetry
from github.PullRequest import PullRequest as GhPull

from bot.errors import InfrabotError, InputError
from bot.forge.base import (
    BOT_LOGIN,
    MAX_COMMENT,
    Comment,
    Forge,
    Issue,
    Permission,
    PullRequest,
    Remote,
    Status,
    StatusState,
    check_body,
    not_found,
    posted,
    posted_title,
    split_marker,
    with_marker,
)
from bot.forge.github import hidden
from bot.forge.github.push import fetch, push_branch
from bot.forge.github.reviews import fold_reviews
from bot.forge.github.settings import AppAuth, GitHubSettings, TokenAuth

MAX_STATUS_DESCRIPTION = 140
"""GitHub refuses a longer commit status description."""
_ISSUE_MARKER = re.compile(r"\A<!-- infrabot:issue=(\d{1,9}) -->\n?")
_PERMISSIONS = {
    "admin": Permission.ADMIN,
    "maintain": Permission.WRITE,
    "write": Permission.WRITE,
    "triage": Permission.READ,
    "read": Permission.READ,
}


class GitHubForge:
    def __init__(self, settings: GitHubSettings, auth: TokenAuth | AppAuth) -> None:
        self.settings = settings
        self._auth = _pygithub_auth(auth)
        self._app = auth if isinstance(auth, AppAuth) else None
        retry = GithubRetry(
            total=settings.retries,
            backoff_factor=settings.backoff,
            secondary_rate_wait=settings.secondary_rate_wait,
            max_rate_limit_wait=settings.max_rate_limit_wait,
            allowed_methods={"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"},
        )
        self.gh = github.Github(
            auth=self._auth,
            base_url=settings.api_url.rstrip("/"),
            timeout=settings.timeout,
            retry=retry,
            seconds_between_requests=settings.seconds_between_requests,
            seconds_between_writes=settings.seconds_between_writes,
            lazy=True,
        )
        self.repo = self.gh.get_repo(settings.repository)
        self._bot_login = settings.bot_login
        self._clone: str | None = None

    # -- identity ----------------------------------------------------------------------

    @property
    def bot_login(self) -> str:
        """The bot's login on GitHub (asked once: ``GET /app`` or ``GET /user``)."""
        if self._bot_login is None:
            with _errors("finding the bot's own login"):
                if self._app is not None:
                    integration = GithubIntegration(
                        auth=_app_auth(self._app), base_url=self.settings.api_url.rstrip("/")
                    )
                    self._bot_login = f"{integration.get_app().slug}[bot]"
                else:
                    self._bot_login = self.gh.get_user().login
        return self._bot_login

    def _who(self, login: str | None) -> str:
        if login is None:
            return "ghost"
        if login == self.bot_login:
            return BOT_LOGIN
        return f"{login} (a person)" if login == BOT_LOGIN else login

    def _token(self) -> str:
        token = getattr(self._auth, "token", None)
        if not isinstance(token, str):
            raise InfrabotError("the GitHub credentials give no token to push with")
        return token

    # -- the Forge protocol ------------------------------------------------------------

    def issue(self, number: int) -> Issue:
        with _errors(f"reading #{number}", number):
            raw = self.repo.get_issue(number)
            return Issue(
                number=raw.number,
                title=raw.title,
                body=raw.body or "",
                author=self._who(raw.user.login),
                state="open" if raw.state == "open" else "closed",
                labels=tuple(label.name for label in raw.labels),
                created_at=raw.created_at,
                is_pull_request=raw.pull_request is not None,
            )

    def _pull(self, number: int) -> GhPull:
        try:
            with _errors(f"reading pull request #{number}", number):
                raw = self.repo.get_pull(number)
                _ = raw.state  # lazy: fetch now, so a 404 is read here
                return raw
        except InputError:
            if not self.issue(number).is_pull_request:
                raise InputError(f"#{number} is an issue, not a pull request") from None
            raise

    def pull_request(self, number: int) -> PullRequest:
        raw = self._pull(number)
        with _errors(f"reading pull request #{number}", number):
            return self._pull_model(raw)

    def _pull_model(self, raw: GhPull) -> PullRequest:
        author = self._who(raw.user.login)
        marker = _ISSUE_MARKER.match(raw.body or "")
        reviews = fold_reviews(
            (self._who(r.user.login if r.user else None), r.state, r.commit_id, r.submitted_at)
            for r in raw.get_reviews()
            if r.submitted_at is not None
        )
        return PullRequest(
            number=raw.number,
            title=raw.title,
            body=(raw.body or "")[marker.end() :] if marker else raw.body or "",
            author=author,
            head_branch=raw.head.ref,
            base_branch=raw.base.ref,
            head_sha=raw.head.sha,
            base_sha=raw.base.sha,
            state="merged" if raw.merged else ("open" if raw.state == "open" else "closed"),
            issue=int(marker.group(1)) if marker and author == BOT_LOGIN else None,
            merge_sha=raw.merge_commit_sha if raw.merged else None,
            reviews=reviews,
            created_at=raw.created_at,
            fork=_is_fork(raw),
            merged_by=self._who(raw.merged_by.login) if raw.merged and raw.merged_by else None,
        )

    def _comments(self, number: int) -> list[tuple[Any, Comment, str | None]]:
        """(PyGithub's comment, the forge's, the hidden data it ends with)."""
        with _errors(f"reading the comments of #{number}", number):
            out = []
            for raw in self.repo.get_issue(number).get_comments():
                visible, data = hidden.detach(raw.body or "")
                topic, body = split_marker(visible)
                comment = Comment(
                    id=raw.id,
                    number=number,
                    author=self._who(raw.user.login),
                    body=body,
                    created_at=raw.created_at,
                    topic=topic,
                )
                out.append((raw, comment, data))
            return out

    def comments(self, number: int) -> list[Comment]:
        return [comment for _, comment, _ in self._comments(number)]

    def _mine(self, number: int, topic: str) -> list[tuple[Any, Comment, str | None]]:
        return [
            row
            for row in self._comments(number)
            if row[1].author == BOT_LOGIN and row[1].topic == topic
        ]

    def hidden(self, number: int, topic: str) -> str | None:
        """The data hidden in the bot's own ``topic`` comment (never a person's)."""
        mine = self._mine(number, topic)
        return mine[0][2] if mine else None

    def ensure_hidden(self, number: int, topic: str, data: str, placeholder: str) -> None:
        """Hide ``data`` in the bot's ``topic`` comment, its visible body kept (a new
        comment shows ``placeholder``); ``ensure_comment`` keeps it through later edits."""
        mine = self._mine(number, topic)
        body = mine[0][1].body if mine else placeholder
        raw = _raw_comment(topic, body, data)
        with _errors(f"writing the {topic} comment on #{number}", number):
            if not mine:
                self.repo.get_issue(number).create_comment(raw)
            elif mine[0][2] != data:
                mine[0][0].edit(raw)

    def ensure_comment(
        self, number: int, topic: str, body: str, *, author: str = BOT_LOGIN
    ) -> Comment:
        if author != BOT_LOGIN:
            raise InputError("on GitHub the bot writes only its own comments")
        mine = self._mine(number, topic)
        kept = mine[0][2] if mine else None  # hidden data rides through the edit
        raw = _raw_comment(topic, body, kept)
        with _errors(f"writing the {topic} comment on #{number}", number):
            if not mine:
                made = self.repo.get_issue(number).create_comment(raw)
                return Comment(
                    id=made.id,
                    number=number,
                    author=BOT_LOGIN,
                    body=body,
                    created_at=made.created_at,
                    topic=topic,
                )
            gh, first, _ = mine[0]
            if first.body != body:
                gh.edit(raw)
            return first.model_copy(update={"body": body})

    def open_pull_request(
        self, *, branch: str, base: str, title: str, body: str, issue: int | None, author: str
    ) -> PullRequest:
        if branch == base:
            raise InputError(f"a pull request needs a branch other than its base {base!r}")
        if not title.strip():
            raise InputError("a pull request needs a title")
        if author != BOT_LOGIN:
            raise InputError("on GitHub the bot opens only its own pull requests")
        body, title = posted(body), posted_title(title)
        if issue is not None:
            self.issue(issue)
        owner = self.settings.repository.split("/")[0]
        with _errors(f"opening a pull request from {branch!r}"):
            existing = list(self.repo.get_pulls(state="open", head=f"{owner}:{branch}"))
            if existing:
                raw = existing[0]
                kept = issue if issue is not None else self._pull_model(raw).issue
                raw.edit(title=title, body=_with_issue(kept, body))
                return self.pull_request(raw.number)
            try:
                made = self.repo.create_pull(
                    base=base, head=branch, title=title, body=_with_issue(issue, body)
                )
            except GithubException as exc:
                if exc.status == 422:
                    raise InputError(
                        f"GitHub would not open a pull request from {branch!r} into {base!r}: "
                        f"{_message(exc)}"
                    ) from None
                raise
            return self._pull_model(made)

    def update_pull_request(self, number: int, *, body: str) -> PullRequest:
        body = posted(body)
        current = self.pull_request(number)
        with _errors(f"updating pull request #{number}", number):
            self._pull(number).edit(body=_with_issue(current.issue, body))
        return self.pull_request(number)

    def set_status(self, sha: str, context: str, state: StatusState, description: str) -> None:
        if len(description) > MAX_STATUS_DESCRIPTION:
            description = description[: MAX_STATUS_DESCRIPTION - 1] + "…"
        with _errors(f"setting {context} on {sha[:7]}"):
            self.repo.get_commit(sha).create_status(state, description=description, context=context)

    def statuses(self, sha: str) -> list[Status]:
        with _errors(f"reading the statuses of {sha[:7]}"):
            try:
                combined = self.repo.get_commit(sha).get_combined_status()
            except GithubException as exc:
                if exc.status in (404, 422):  # no such commit: nothing was set on it
                    return []
                raise
            rows = [
                Status(sha=sha, context=s.context, state=s.state, description=s.description or "")
                for s in combined.statuses
            ]
        return sorted(rows, key=lambda s: s.context)

    def permission(self, user: str) -> Permission:
        if user == BOT_LOGIN or user.endswith("[bot]") or user.endswith(" (a person)"):
            return Permission.NONE
        try:
            with _errors(f"reading the permission of {user}"):
                level = self.repo.get_collaborator_permission(user)
        except InputError:
            return Permission.NONE  # no such user
        return _PERMISSIONS.get(level, Permission.NONE)

    def close_issue(self, number: int, comment: str | None = None) -> None:
        if comment is not None:
            self.ensure_comment(number, "closed", comment)
        with _errors(f"closing #{number}", number):
            raw = self.repo.get_issue(number)
            if raw.state == "open":
                raw.edit(state="closed")

    def create_issue(
        self, title: str, body: str, author: str, *, labels: Sequence[str] = ()
    ) -> Issue:
        """An issue the bot opens (a ticket for a human); people open theirs on GitHub."""
        if author != BOT_LOGIN:
            raise InputError("on GitHub the bot opens only its own issues")
        if not title.strip():
            raise InputError("an issue needs a title")
        title, body = posted_title(title), posted(body)
        with _errors("opening an issue"):
            made = self.repo.create_issue(title, body=body, labels=list(labels))
            number = made.number
        return self.issue(number)

    def merged_pull_request(self, sha: str) -> PullRequest | None:
        """GitHub's pull requests associated with commit ``sha``, kept if merged as it."""
        with _errors(f"finding the pull request merged as {sha[:7]}"):
            try:
                rows = list(self.repo.get_commit(sha).get_pulls())
            except GithubException as exc:
                if exc.status in (404, 422):  # no such commit here
                    return None
                raise
            found = [p for p in rows if p.merged_at is not None and p.merge_commit_sha == sha]
            return self._pull_model(found[0]) if found else None

    # -- what GitHub adds ----------------------------------------------------------------

    def merge(self, number: int, expected_head_sha: str, by: str) -> PullRequest:
        """Merge exactly ``expected_head_sha``; GitHub refuses (409) if the head moved."""
        current = self.pull_request(number)
        if current.state != "open":
            raise InputError(f"pull request #{number} is {current.state}: it cannot be merged")
        with _errors(f"merging pull request #{number}", number):
            try:
                self._pull(number).merge(
                    commit_title=f"Merge PR #{number}: {current.title}",
                    commit_message=f"Merged by infrabot for @{by} at {expected_head_sha}.",
                    merge_method="merge",
                    sha=expected_head_sha,
                )
            except GithubException as exc:
                if exc.status == 409:
                    raise InputError(
                        f"the head of pull request #{number} moved since "
                        f"{expected_head_sha[:7]} was checked: nothing was merged"
                    ) from None
                if exc.status == 405:
                    raise InputError(
                        f"GitHub cannot merge pull request #{number}: {_message(exc)}"
                    ) from None
                raise
        return self.pull_request(number)

    def add_labels(self, number: int, *labels: str) -> None:
        with _errors(f"labelling #{number}", number):
            self.repo.get_issue(number).add_to_labels(*labels)

    def remove_label(self, number: int, label: str) -> None:
        issue = self.issue(number)
        if label in issue.labels:
            with _errors(f"unlabelling #{number}", number):
                self.repo.get_issue(number).remove_from_labels(label)

    def changed_files(self, number: int) -> list[str]:
        raw = self._pull(number)
        with _errors(f"reading the files of pull request #{number}", number):
            return [f.filename for f in raw.get_files()]

    def mergeable(self, number: int) -> bool | None:
        """True/False once GitHub has computed it; None while it has not."""
        raw = self._pull(number)
        with _errors(f"reading pull request #{number}", number):
            return raw.mergeable

    def push_branch(self, repo_path: Path, branch: str, sha: str) -> None:
        push_branch(repo_path, self._clone_url(), branch, sha, self._token())

    def fetch(self, repo_path: Path, refspecs: Sequence[str]) -> None:
        fetch(repo_path, self._clone_url(), refspecs, self._token())

    def _clone_url(self) -> str:
        if self._clone is None:
            with _errors("reading the repository's clone URL"):
                self._clone = str(self.repo.clone_url)
        return self._clone


def _is_fork(raw: GhPull) -> bool:
    head, base = raw.head.repo, raw.base.repo
    return head is None or base is None or head.full_name != base.full_name


def _raw_comment(topic: str, body: str, data: str | None) -> str:
    """The marker, the visible body (posted, within the limit) and the hidden data."""
    if data is None:
        return with_marker(topic, body)
    tail = "\n" + hidden.trailer(data)
    marker = with_marker(topic, "")
    return check_body(
        hidden.attach(marker + posted(body, MAX_COMMENT - len(marker) - len(tail)), data)
    )


def _with_issue(issue: int | None, body: str) -> str:
    return check_body(body if issue is None else f"<!-- infrabot:issue={issue} -->\n{body}")


def _pygithub_auth(auth: TokenAuth | AppAuth) -> Auth.Auth:
    if isinstance(auth, TokenAuth):
        return Auth.Token(auth.token.get_secret_value())
    return Auth.AppInstallationAuth(_app_auth(auth), auth.installation_id)


def _app_auth(auth: AppAuth) -> Auth.AppAuth:
    return Auth.AppAuth(auth.app_id, auth.private_key.get_secret_value())


def _message(exc: GithubException) -> str:
    data: Any = exc.data
    if isinstance(data, dict):
        errors = data.get("errors") or []
        detail = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
        detail += [e for e in errors if isinstance(e, str)]
        return "; ".join([str(data.get("message", "")), *map(str, detail)]).strip("; ")
    return str(data)[:200]


@contextmanager
def _errors(what: str, number: int | None = None) -> Iterator[None]:
    """GitHub's failures as the project's errors: clear, one line, no credentials."""
    try:
        yield
    except GithubException as exc:
        _raise(exc, what, number)
    except requests.RequestException as exc:
        raise InfrabotError(
            f"GitHub did not answer while {what} ({type(exc).__name__}); "
            "it was retried with backoff: try again later"
        ) from None


def _raise(exc: GithubException, what: str, number: int | None) -> NoReturn:
    if exc.status == 404 and number is not None:
        raise not_found(number) from None
    if exc.status == 401:
        raise InfrabotError(
            f"GitHub refused the bot's credentials while {what}: check the token or the app"
        ) from None
    if isinstance(exc, github.RateLimitExceededException) or exc.status in (403, 429):
        raise InfrabotError(
            f"GitHub's rate limit stopped {what} ({_message(exc)}): "
            "it was waited out as long as allowed; try again after the reset"
        ) from None
    raise InfrabotError(f"GitHub answered {exc.status} while {what}: {_message(exc)}") from None


if TYPE_CHECKING:  # mypy proves the GitHub forge keeps the whole protocol
    _: type[Forge] = GitHubForge
    _remote: type[Remote] = GitHubForge
