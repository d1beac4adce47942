"""The ledger: what happened (trajectories) and who may change the estate now (the lock)."""

from bot.ledger.events import STEPS, Event, render_event_catalogue
from bot.ledger.intents import ApplyIntent, IntentStore
from bot.ledger.lock import EstateLock, LockState
from bot.ledger.trajectory import Trajectory, mask_obvious_secrets

__all__ = [
    "STEPS",
    "ApplyIntent",
    "EstateLock",
    "Event",
    "IntentStore",
    "LockState",
    "Trajectory",
    "mask_obvious_secrets",
    "render_event_catalogue",
]
