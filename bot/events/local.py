"""Events from the local CLI, built from what the local forge just stored.

The CLI first writes the person's act to the local forge (an issue, a comment, a
review, a merge) and then hands the router the event built here.  The delivery key is
made from the stored ids, so building the event again for the same act gives the same
key.  The local bot (``BOT_LOGIN``) is an actor of type ``Bot``.
"""

from __future__ import annotations

from bot.errors import InputError
from bot.events.models import (
    Actor,
    CommentCreated,
    IssueOpened,
    PullRequestMerged,
    PullRequestUpdated,
    ReviewSubmitted,
)
from bot.forge.base import BOT_LOGIN, Comment, Issue, PullRequest, Review


def actor(login: str) -> Actor:
    return Actor(login=login, type="Bot" if login == BOT_LOGIN else "User")


def issue_opened(issue: Issue) -> IssueOpened:
    return IssueOpened(
        source="cli",
        delivery=f"local:issue:{issue.number}:opened",
        sender=actor(issue.author),
        number=issue.number,
        title=issue.title,
        body=issue.body,
        author=actor(issue.author),
        labels=issue.labels,
    )


def comment_created(comment: Comment, *, on_pull_request: bool) -> CommentCreated:
    return CommentCreated(
        source="cli",
        delivery=f"local:comment:{comment.id}",
        sender=actor(comment.author),
        number=comment.number,
        comment_id=comment.id,
        body=comment.body,
        author=actor(comment.author),
        on_pull_request=on_pull_request,
    )


def review_submitted(number: int, review: Review) -> ReviewSubmitted:
    stamp = review.created_at.isoformat()
    return ReviewSubmitted(
        source="cli",
        delivery=f"local:review:{number}:{review.author}:{review.commit_sha}:{stamp}",
        sender=actor(review.author),
        number=number,
        review_id=None,
        author=actor(review.author),
        state=review.state,
        commit_sha=review.commit_sha,
    )


def pull_request_opened(pr: PullRequest, by: str) -> PullRequestUpdated:
    return PullRequestUpdated(
        kind="pr.opened",
        source="cli",
        delivery=f"local:pr:{pr.number}:opened:{pr.head_sha}",
        sender=actor(by),
        number=pr.number,
        title=pr.title,
        author=actor(pr.author),
        head_branch=pr.head_branch,
        head_sha=pr.head_sha,
        base_branch=pr.base_branch,
        base_sha=pr.base_sha,
        fork=False,
    )


def pull_request_merged(pr: PullRequest, by: str) -> PullRequestMerged:
    if pr.state != "merged" or not pr.merge_sha:
        raise InputError(f"pull request #{pr.number} is {pr.state}, not merged")
    return PullRequestMerged(
        source="cli",
        delivery=f"local:pr:{pr.number}:merged:{pr.merge_sha}",
        sender=actor(by),
        number=pr.number,
        author=actor(pr.author),
        head_branch=pr.head_branch,
        head_sha=pr.head_sha,
        base_branch=pr.base_branch,
        base_sha=pr.base_sha,
        merge_sha=pr.merge_sha,
        merged_by=actor(by),
        fork=False,
    )
