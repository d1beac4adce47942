"""The one status comment per pull request: where it stands, edited as work moves.

queued → checking → checked (or check failed) → refused / applying → applied (or apply
failed), with the next step a person can take.  Replies to people's commands are separate
comments (one per command); this one is the pull request's dashboard.
"""

from __future__ import annotations

from typing import Literal

from bot.flow.services import Services
from bot.forge.base import PullRequest
from bot.markdown import code, text

Stage = Literal[
    "checking", "checked", "check failed", "refused", "applying", "applied", "apply failed"
]

_ICON = {
    "checking": "⏳",
    "checked": "✅",
    "check failed": "❌",
    "refused": "⛔",
    "applying": "⏳",
    "applied": "✅",
    "apply failed": "❌",
}

_NEXT = {
    "checking": "wait for validation and the dry-run",
    "checked": "a reviewer with write permission approves the head; then comment `/apply` or merge",
    "check failed": "fix the findings, push, and comment `/plan`",
    "refused": "see the reply to the command for what is missing",
    "applying": "wait: the estate lock is held until the apply ends",
    "applied": "see the evidence comment",
    "apply failed": "see the evidence comment for what failed and how to recover",
}


def render_status(pr: PullRequest, stage: Stage, detail: str) -> str:
    return (
        f"**infrabot status:** {_ICON[stage]} {stage} — head {code(pr.head_sha[:7])} on "
        f"{code(pr.base_branch)} {code(pr.base_sha[:7])}\n\n{text(detail)}\n\n"
        f"**Next:** {_NEXT[stage]}.\n"
    )


def post_status(svc: Services, pr: PullRequest, stage: Stage, detail: str = "") -> None:
    svc.forge.ensure_comment(pr.number, "status", render_status(pr, stage, detail))
