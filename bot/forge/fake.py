"""An in-memory forge for tests: the same protocol and rules as the local forge.

Branch tips live in ``branches`` (``set_branch`` simulates a push); a branch nobody set
gets a made-up sha derived from its name, so tests that do not care about git need no
setup.  Users are not checked (any name may open issues and comment), but the review
rules are the real ones.  A contract test runs the same cases against both forges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from bot.errors import InputError
from bot.forge.base import (
    BOT_LOGIN,
    Comment,
    Issue,
    Permission,
    PullRequest,
    Review,
    ReviewState,
    Status,
    StatusState,
    check_body,
    check_review,
    not_found,
    posted,
    posted_title,
    split_marker,
    with_marker,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FakeForge:
    def __init__(
        self,
        users: Mapping[str, Permission | str] | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.users = {name: Permission(level) for name, level in (users or {}).items()}
        self.clock = clock
        self.branches: dict[str, str] = {}
        self._issues: dict[int, Issue] = {}
        self._prs: dict[int, PullRequest] = {}
        self._comments: list[tuple[Comment, str]] = []  # (comment, raw body)
        self._statuses: dict[tuple[str, str], Status] = {}
        self._next = 1

    def set_branch(self, name: str, sha: str) -> None:
        self.branches[name] = sha

    def _tip(self, branch: str) -> str:
        return self.branches.get(branch) or hashlib.sha1(branch.encode()).hexdigest()

    def _number(self) -> int:
        self._next += 1
        return self._next - 1

    def _check(self, number: int) -> None:
        if number not in self._issues and number not in self._prs:
            raise not_found(number)

    def _sync(self, pr: PullRequest) -> PullRequest:
        if pr.state == "open":
            tips = {"head_sha": self._tip(pr.head_branch), "base_sha": self._tip(pr.base_branch)}
            pr = pr.model_copy(update=tips)
            self._prs[pr.number] = pr
        return pr

    # -- the Forge protocol ----------------------------------------------------------

    def issue(self, number: int) -> Issue:
        self._check(number)
        if number in self._issues:
            return self._issues[number]
        pr = self._prs[number]
        return Issue(
            number=number,
            title=pr.title,
            body=pr.body,
            author=pr.author,
            state="open" if pr.state == "open" else "closed",
            created_at=pr.created_at or self.clock(),
            is_pull_request=True,
        )

    def pull_request(self, number: int) -> PullRequest:
        self._check(number)
        if number not in self._prs:
            raise InputError(f"#{number} is an issue, not a pull request")
        return self._sync(self._prs[number])

    def comments(self, number: int) -> list[Comment]:
        self._check(number)
        return [c for c, _ in self._comments if c.number == number]

    def ensure_comment(
        self, number: int, topic: str, body: str, *, author: str = BOT_LOGIN
    ) -> Comment:
        raw = with_marker(topic, body)
        self._check(number)
        for i, (c, _) in enumerate(self._comments):
            if (c.number, c.author, c.topic) == (number, author, topic):
                updated = c.model_copy(update={"body": split_marker(raw)[1]})
                self._comments[i] = (updated, raw)
                return updated
        return self._add(number, raw, author)

    def _add(self, number: int, raw: str, author: str) -> Comment:
        topic, visible = split_marker(raw)
        comment = Comment(
            id=len(self._comments) + 1,
            number=number,
            author=author,
            body=visible,
            created_at=self.clock(),
            topic=topic,
        )
        self._comments.append((comment, raw))
        return comment

    def open_pull_request(
        self, *, branch: str, base: str, title: str, body: str, issue: int | None, author: str
    ) -> PullRequest:
        if branch == base:
            raise InputError(f"a pull request needs a branch other than its base {base!r}")
        if not title.strip():
            raise InputError("a pull request needs a title")
        body, title = posted(body), posted_title(title)
        if issue is not None:
            self._check(issue)
        for pr in self._prs.values():
            if pr.state == "open" and pr.head_branch == branch:
                update = {"title": title, "body": body, "issue": issue or pr.issue}
                self._prs[pr.number] = pr.model_copy(update=update)
                return self._sync(self._prs[pr.number])
        pr = PullRequest(
            number=self._number(),
            title=title,
            body=body,
            author=author,
            head_branch=branch,
            base_branch=base,
            head_sha=self._tip(branch),
            base_sha=self._tip(base),
            state="open",
            issue=issue,
            created_at=self.clock(),
        )
        self._prs[pr.number] = pr
        return pr

    def update_pull_request(self, number: int, *, body: str) -> PullRequest:
        body = posted(body)
        pr = self.pull_request(number).model_copy(update={"body": body})
        self._prs[number] = pr
        return pr

    def set_status(self, sha: str, context: str, state: StatusState, description: str) -> None:
        self._statuses[(sha, context)] = Status(
            sha=sha, context=context, state=state, description=description
        )

    def statuses(self, sha: str) -> list[Status]:
        return sorted((s for s in self._statuses.values() if s.sha == sha), key=lambda s: s.context)

    def permission(self, user: str) -> Permission:
        return self.users.get(user, Permission.NONE)

    def close_issue(self, number: int, comment: str | None = None) -> None:
        self._check(number)
        if comment is not None:
            self.ensure_comment(number, "closed", comment)
        if number in self._issues and self._issues[number].state == "open":
            self._issues[number] = self._issues[number].model_copy(update={"state": "closed"})
        elif number in self._prs and self._prs[number].state == "open":
            self._prs[number] = self._prs[number].model_copy(update={"state": "closed"})

    def add_labels(self, number: int, *labels: str) -> None:
        issue = self.issue(number)
        merged = tuple(dict.fromkeys((*issue.labels, *labels)))
        self._issues[number] = issue.model_copy(update={"labels": merged})

    def remove_label(self, number: int, label: str) -> None:
        issue = self.issue(number)
        kept = tuple(x for x in issue.labels if x != label)
        self._issues[number] = issue.model_copy(update={"labels": kept})

    # -- the local forge's extras, so tests can play the people ------------------------

    def create_issue(
        self, title: str, body: str, author: str, *, labels: Sequence[str] = ()
    ) -> Issue:
        if not title.strip():
            raise InputError("an issue needs a title")
        if author == BOT_LOGIN:  # the bot opens tickets too: what it posts is redacted
            title, body = posted_title(title), posted(body)
        check_body(body)
        issue = Issue(
            number=self._number(),
            title=title,
            body=body,
            author=author,
            state="open",
            labels=tuple(labels),
            created_at=self.clock(),
        )
        self._issues[issue.number] = issue
        return issue

    def list_issues(self, state: Literal["open", "closed"] | None = None) -> list[Issue]:
        return [i for i in self._issues.values() if state is None or i.state == state]

    def list_pull_requests(
        self, state: Literal["open", "closed", "merged"] | None = None
    ) -> list[PullRequest]:
        prs = [self._sync(p) for p in list(self._prs.values())]
        return [p for p in prs if state is None or p.state == state]

    def add_comment(self, number: int, body: str, author: str) -> Comment:
        if not body.strip():
            raise InputError("a comment needs a body")
        check_body(body)
        self._check(number)
        return self._add(number, body, author)

    def add_review(self, number: int, author: str, state: ReviewState) -> Review:
        pr = self.pull_request(number)
        check_review(pr, author, state)
        review = Review(author=author, state=state, commit_sha=pr.head_sha, created_at=self.clock())
        self._prs[number] = pr.model_copy(update={"reviews": (*pr.reviews, review)})
        return review

    def mark_merged(self, number: int, merge_sha: str, by: str) -> PullRequest:
        pr = self.pull_request(number)
        if pr.state == "merged" and pr.merge_sha == merge_sha:
            return pr
        if pr.state != "open":
            raise InputError(f"pull request #{number} is {pr.state}: it cannot be merged")
        update = {"state": "merged", "merge_sha": merge_sha, "merged_by": by}
        self._prs[number] = pr.model_copy(update=update)
        return self._prs[number]

    def merged_pull_request(self, sha: str) -> PullRequest | None:
        found = [p for p in self._prs.values() if p.state == "merged" and p.merge_sha == sha]
        return found[0] if found else None

    def merge(self, number: int, expected_head_sha: str, by: str) -> PullRequest:
        """A merge commit named after the head and base; refused if the head moved."""
        pr = self.pull_request(number)
        if pr.state != "open":
            raise InputError(f"pull request #{number} is {pr.state}: it cannot be merged")
        if pr.head_sha != expected_head_sha:
            raise InputError(
                f"the head of #{number} moved from {expected_head_sha[:7]} to "
                f"{pr.head_sha[:7]} since it was authorised: nothing was merged"
            )
        merge_sha = hashlib.sha1(f"{pr.base_sha}+{pr.head_sha}".encode()).hexdigest()
        self.branches[pr.base_branch] = merge_sha
        return self.mark_merged(number, merge_sha, by)

    def dismiss_review(self, number: int, reviewer: str, by: str) -> Review:
        if not self.permission(by).at_least(Permission.WRITE):
            raise InputError(f"@{by} needs write permission to dismiss a review")
        pr = self.pull_request(number)
        latest = {r.author: r for r in pr.latest_reviews()}
        if reviewer not in latest or latest[reviewer].state == "dismissed":
            raise InputError(f"@{reviewer} has no review on #{number} to dismiss")
        review = Review(
            author=reviewer,
            state="dismissed",
            commit_sha=latest[reviewer].commit_sha,
            created_at=self.clock(),
        )
        self._prs[number] = pr.model_copy(update={"reviews": (*pr.reviews, review)})
        return review

    def refresh_head(self, number: int, head_sha: str, base_sha: str) -> PullRequest:
        pr = self.pull_request(number)
        self.branches[pr.head_branch] = head_sha
        self.branches[pr.base_branch] = base_sha
        return self.pull_request(number)
