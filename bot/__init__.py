"""infrabot: a GitOps bot for infrastructure. See AGENTS.md for the map."""

__version__ = "0.1.0"
