"""The forge: issues, pull requests, comments, reviews, statuses and permissions."""

from bot.forge.base import (
    BOT_LOGIN,
    Comment,
    Forge,
    Issue,
    Permission,
    PullRequest,
    Review,
    Status,
)

__all__ = [
    "BOT_LOGIN",
    "Comment",
    "Forge",
    "Issue",
    "Permission",
    "PullRequest",
    "Review",
    "Status",
]
