"""The worker: one thread that drains the queue through the injected ``process`` callable
(which ``serve`` runs in a child process: ``bot.server.child``).

``process(delivery) -> outcome`` is where the event parser and the router plug in; it
returns a short outcome name from a small set (it labels a metric), and puts any detail
in the log. It runs outside the queue's lock, so the HTTP intake keeps acknowledging
while it works. An ``InfrabotError`` from it fails the delivery with its message; any
other exception is a bug: the traceback goes to the log and the delivery is failed, and
the worker goes on with the next one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from bot.errors import InfrabotError
from bot.server.metrics import ServerMetrics
from bot.server.queue import Delivery, DeliveryQueue

Process = Callable[[Delivery], str]

log = logging.getLogger("infrabot.server")

_PRUNE_EVERY = 3600.0
_CHECKPOINT_EVERY = 100  # deliveries; and whenever the queue is empty


class Worker:
    """Claims deliveries one at a time and records each one's outcome."""

    def __init__(
        self,
        queue: DeliveryQueue,
        process: Process,
        metrics: ServerMetrics,
        idle_wait: float = 1.0,
        close: Callable[[bool], None] | None = None,
    ) -> None:
        """``close(finished)`` ends what runs ``process`` (``bot.server.child``) once the
        worker stops: ``finished`` False when the grace ran out mid-delivery."""
        self._queue = queue
        self._process = process
        self._close = close
        self._abandoned = threading.Event()
        self._metrics = metrics
        self._idle_wait = idle_wait
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="infrabot-worker", daemon=True)
        self.current: Delivery | None = None
        self.abandoned: Delivery | None = None
        """The delivery a stop left running (claimed: the next start requeues it)."""

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something was queued: look now rather than after the idle wait."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, grace: float) -> bool:
        """Take no new work; wait up to ``grace`` seconds for the current delivery.

        True if the worker stopped. False if a delivery was still running: it stays
        claimed, and the next start requeues it.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(grace)
        stopped = not self._thread.is_alive()
        if not stopped:
            self.abandoned = self.current
            self._abandoned.set()  # the delivery stays claimed: the next start requeues it
        if self._close is not None:
            self._close(stopped)
        return stopped

    def _run(self) -> None:
        last_prune = 0.0
        since_checkpoint = 0
        while not self._stopping.is_set():
            if time.monotonic() - last_prune > _PRUNE_EVERY:
                last_prune = time.monotonic()
                self._housekeeping(self._queue.prune)
            try:
                delivery = self._queue.claim()
            except sqlite3.Error:  # a disk that fails now may not later; keep trying
                log.exception("cannot read the queue; trying again shortly")
                delivery = None
            if delivery is None or since_checkpoint >= _CHECKPOINT_EVERY:
                since_checkpoint = 0
                self._housekeeping(self._queue.checkpoint)
            if delivery is None:
                self._wake.wait(self._idle_wait)
                self._wake.clear()
                continue
            self.current = delivery
            self._work(delivery)
            self.current = None
            since_checkpoint += 1

    @staticmethod
    def _housekeeping(task: Callable[[], object]) -> None:
        try:
            task()
        except sqlite3.Error:  # it is tried again later; the deliveries are not at stake
            log.exception("queue housekeeping (%s) failed", getattr(task, "__name__", task))

    def _work(self, delivery: Delivery) -> None:
        started = time.perf_counter()
        ok = False
        try:
            outcome = self._process(delivery)
            ok = True
        except InfrabotError as exc:
            outcome = "failed"
            log.warning("delivery %s (%s) failed: %s", delivery.id, delivery.event, exc)
        except Exception:
            outcome = "error"
            if not self._abandoned.is_set():  # else the stop ended it (its child was killed)
                log.exception("delivery %s (%s): internal error", delivery.id, delivery.event)
        elapsed = time.perf_counter() - started
        if self._abandoned.is_set():
            return
        self._metrics.work_seconds.labels(delivery.event).observe(elapsed)
        self._metrics.deliveries.labels(delivery.event, outcome).inc()
        try:
            if not self._queue.finish(delivery, outcome, ok=ok):
                log.warning("delivery %s was taken back while it ran", delivery.id)
        except sqlite3.Error:  # it stays claimed, and the next start requeues it
            log.exception("cannot record the outcome of delivery %s", delivery.id)
        log.info("delivery %s (%s): %s in %.3fs", delivery.id, delivery.event, outcome, elapsed)


def log_delivery(delivery: Delivery) -> str:
    """The default ``process`` until the router is wired: log the event; the queue and
    the ``infrabot_deliveries`` metric record its type."""
    log.info(
        "delivery %s: %s event of %d bytes (attempt %d)",
        delivery.id,
        delivery.event,
        len(delivery.body),
        delivery.attempts,
    )
    return "logged"
