"""The drafting brains behind one interface: capabilities, ``Engine``, the offline engine."""

from bot.engines.base import Engine, EngineContext
from bot.engines.capabilities import Capability, Parameter, load_capabilities
from bot.engines.offline import OfflineEngine

__all__ = [
    "Capability",
    "Engine",
    "EngineContext",
    "OfflineEngine",
    "Parameter",
    "load_capabilities",
]
