"""Events: what happened, as frozen values, from GitHub, GitHub Actions or the local CLI.

Pure: no I/O.  ``parse_webhook`` and ``parse_actions`` never raise on any input; they
return an event, an ``Ignored`` or a ``Refused``.
"""

from bot.events.github import EVENTS, MAX_BODY, from_payload, parse_actions, parse_webhook
from bot.events.models import (
    Actor,
    AlertFired,
    CommentCreated,
    Event,
    Ignored,
    IssueEdited,
    IssueOpened,
    Parsed,
    PullRequestMerged,
    PullRequestUpdated,
    Pushed,
    Refused,
    ReviewDismissed,
    ReviewSubmitted,
    WorkflowDispatch,
)
from bot.events.signature import Signature, check_signature, sign, signature_ok

__all__ = [
    "EVENTS",
    "MAX_BODY",
    "Actor",
    "AlertFired",
    "CommentCreated",
    "Event",
    "Ignored",
    "IssueEdited",
    "IssueOpened",
    "Parsed",
    "PullRequestMerged",
    "PullRequestUpdated",
    "Pushed",
    "Refused",
    "ReviewDismissed",
    "ReviewSubmitted",
    "Signature",
    "WorkflowDispatch",
    "check_signature",
    "from_payload",
    "parse_actions",
    "parse_webhook",
    "sign",
    "signature_ok",
]
