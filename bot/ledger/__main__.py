"""``python -m bot.ledger > docs/events.md``: render the trajectory event catalogue."""

from bot.ledger.events import render_event_catalogue

print(render_event_catalogue(), end="")
