"""Comment commands: parse a comment into a typed command, and decide who may /apply.

Pure functions, no I/O.
"""

from bot.commands.authorize import ApplyContext, Refusal, authorize_apply
from bot.commands.parse import (
    HELP_TEXT,
    MAX_COMMENT_BYTES,
    Command,
    CommandName,
    Ignore,
    Reply,
    parse_comment,
)

__all__ = [
    "HELP_TEXT",
    "MAX_COMMENT_BYTES",
    "ApplyContext",
    "Command",
    "CommandName",
    "Ignore",
    "Refusal",
    "Reply",
    "authorize_apply",
    "parse_comment",
]
