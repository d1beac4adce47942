"""The one exception base of the package.

Expected failures (a schema error, a refused /apply, a failed host) are *values*
returned by the core; an ``InfrabotError`` is raised only when the program cannot go on
(bad input at an entry point, a missing tool, a broken repository).  The CLI turns it
into one line on stderr and a non-zero exit.
"""


class InfrabotError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""


class InputError(InfrabotError):
    """Input at an entry point (CLI, YAML, event file, tool call) was rejected."""


class LockHeld(InfrabotError):
    """The estate lock is held by someone else."""
