"""Pure event handling: event models, parsers and the webhook signature check (no I/O)."""
