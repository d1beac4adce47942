"""The work runs in a child process, so it never holds the acknowledgements' GIL.

Theory of operation
-------------------
The router's work is mostly Python (validation, YAML, pydantic, the GitHub client):
run in a thread beside the event loop, it holds the GIL for the switch interval at a
time, and every acknowledgement waits for it several times (the request, the group
commit's thread, the reply). Measured with ``scripts/benchmark_serve.py --work cpu``:
ack p99 rose from ~10 ms to ~170 ms. So ``serve`` forks one child before it starts
any thread (fork is safe then, and the ``process`` callable need not be picklable);
the worker thread hands it one delivery at a time over a pipe and waits for the
outcome, which costs the event loop nothing.

The child ignores SIGINT and SIGTERM (a Ctrl-C or a service manager's stop reaches the
whole group; the parent decides: it finishes the delivery in progress within the grace,
then closes the pipe) and dies with the parent (``PR_SET_PDEATHSIG``), so a delivery is
never worked on by a process nobody will hear from. A child that dies mid-delivery fails
that delivery ("error") and a new child is forked for the next.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from contextlib import suppress
from typing import Any

from bot.errors import InfrabotError
from bot.server.queue import Delivery

Process = Any  # Callable[[Delivery], str]; Any: the child module must not import worker

log = logging.getLogger("infrabot.server")

_PR_SET_PDEATHSIG = 1
_NICE = 10


class WorkCrashed(Exception):
    """The child died, or the work raised something other than an ``InfrabotError``."""


class ChildProcess:
    """``process`` in a forked child; call it like ``process`` (``Delivery -> str``)."""

    def __init__(self, process: Process) -> None:
        self._process = process
        self._context = multiprocessing.get_context("fork")
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        if threading.active_count() > 1:
            log.warning("forking the worker process beside %d threads", threading.active_count())
        parent, child = self._context.Pipe()
        proc = self._context.Process(
            target=_serve, args=(self._process, child), name="infrabot-work", daemon=True
        )
        proc.start()
        child.close()
        self._conn: multiprocessing.connection.Connection = parent
        self._proc = proc

    def __call__(self, delivery: Delivery) -> str:
        with self._lock:
            if not self._proc.is_alive():
                self._start()
            try:
                self._conn.send(delivery)
                kind, text = self._conn.recv()
            except (EOFError, OSError):
                code = self._proc.exitcode
                self._proc.join(1)
                self._start()
                raise WorkCrashed(f"the worker process died (exit {code})") from None
        if kind == "failed":
            raise InfrabotError(text)
        if kind == "error":
            raise WorkCrashed(text)
        return str(text)

    def close(self, finished: bool) -> None:
        """Stop the child: after its delivery (``finished``), or now (the grace is over)."""
        if finished:
            with suppress(OSError):
                self._conn.send(None)
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()


def _serve(process: Process, conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    os.nice(_NICE)  # the acknowledgements come first when the cores are busy
    while True:
        try:
            delivery = conn.recv()
        except (EOFError, OSError):
            return
        if delivery is None:
            return
        try:
            result: tuple[str, str] = ("ok", process(delivery))
        except InfrabotError as exc:
            result = ("failed", str(exc))
        except Exception as exc:
            log.exception("delivery %s (%s): internal error", delivery.id, delivery.event)
            result = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(result)
        except OSError:
            return


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
