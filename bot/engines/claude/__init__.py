"""The Claude engine (anthropic SDK, Messages API with tool use)."""

from bot.engines.claude.engine import DEFAULT_MODEL, ClaudeEngine, ClaudeSettings
from bot.engines.claude.loop import Limits

__all__ = ["DEFAULT_MODEL", "ClaudeEngine", "ClaudeSettings", "Limits"]
