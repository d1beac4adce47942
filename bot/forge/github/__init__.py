"""The GitHub forge (PyGithub): see ``forge.py`` for its theory of operation."""

from bot.forge.github.forge import MAX_STATUS_DESCRIPTION, GitHubForge
from bot.forge.github.reviews import fold_reviews
from bot.forge.github.settings import AppAuth, GitHubSettings, TokenAuth, auth_from_env

__all__ = [
    "MAX_STATUS_DESCRIPTION",
    "AppAuth",
    "GitHubForge",
    "GitHubSettings",
    "TokenAuth",
    "auth_from_env",
    "fold_reviews",
]
