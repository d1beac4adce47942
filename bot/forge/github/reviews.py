"""GitHub's reviews as the forge's: pure, so the rules are tested table by table.

A dismissed review is withdrawn, and so is everything its author said before it: a
dismissed approval never counts again, and a dismissed "changes requested" no longer
blocks.  Pending (unsubmitted) reviews are nobody's business yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.forge.base import Review, ReviewState

_STATES: dict[str, ReviewState] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
}


def fold_reviews(rows: Iterable[tuple[str, str, str, datetime]]) -> tuple[Review, ...]:
    """(author, GitHub state, commit sha, submitted at), oldest first, as reviews."""
    kept: list[Review] = []
    for author, state, sha, when in rows:
        if state == "DISMISSED":
            kept = [r for r in kept if r.author != author]
        elif state in _STATES:
            kept.append(
                Review(author=author, state=_STATES[state], commit_sha=sha, created_at=when)
            )
    return tuple(kept)
