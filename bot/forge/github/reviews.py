"""GitHub's reviews as the forge's: pure, so the rules are tested table by table.

GitHub turns a dismissed review's state into ``DISMISSED`` where it stands; it stays a
decisive review of its author (``PullRequest.latest_reviews``), so a dismissed approval
never counts and a dismissed "changes requested" no longer blocks.  Pending
(unsubmitted) reviews are nobody's business yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.forge.base import Review, ReviewState

_STATES: dict[str, ReviewState] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
    "DISMISSED": "dismissed",
}


def fold_reviews(rows: Iterable[tuple[str, str, str, datetime]]) -> tuple[Review, ...]:
    """(author, GitHub state, commit sha, submitted at), oldest first, as reviews."""
    return tuple(
        Review(author=author, state=_STATES[state], commit_sha=sha, created_at=when)
        for author, state, sha, when in rows
        if state in _STATES
    )
