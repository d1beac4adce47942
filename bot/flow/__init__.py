"""The deterministic pipeline: ticket → plan → PR → validate/dry-run → apply → evidence."""
