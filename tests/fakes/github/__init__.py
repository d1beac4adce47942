"""A test-only GitHub over real HTTP on 127.0.0.1 (see README.md)."""

from fakes.github import loop as _loop  # registers the loop's extra route
from fakes.github.server import FakeGitHub, Fault

__all__ = ["FakeGitHub", "Fault"]
del _loop
