"""Group commit: deliveries that arrive together are made durable by one fsync.

An fsync costs from a fraction of a millisecond to tens of milliseconds when the disk is
busy, and each acknowledgement waits for one. One thread takes every offer waiting at
that moment, writes them in one transaction (``DeliveryQueue.offer_many``) and answers
each through its callback, so a burst of deliveries shares an fsync instead of queueing
behind one fsync each. Nothing is answered before its batch is committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from bot.server.queue import Delivery, DeliveryQueue, Offer

Reply = Callable[[Offer | BaseException], None]

log = logging.getLogger("infrabot.server")

_MAX_BATCH = 256


class GroupCommit:
    """A thread that commits offers in batches; ``submit`` never blocks."""

    def __init__(self, deliveries: DeliveryQueue) -> None:
        self._deliveries = deliveries
        self._pending: queue.SimpleQueue[tuple[Delivery, Reply] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="infrabot-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, delivery: Delivery, reply: Reply) -> None:
        """Queue ``delivery``; ``reply`` is called from the commit thread with the outcome."""
        self._pending.put((delivery, reply))

    def stop(self) -> None:
        """Commit what was submitted, then end the thread."""
        self._pending.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < _MAX_BATCH and not self._pending.empty():
                item = self._pending.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)
            if stopping:
                return

    def _commit(self, batch: list[tuple[Delivery, Reply]]) -> None:
        results: list[Offer | BaseException]
        try:
            results = list(self._deliveries.offer_many([delivery for delivery, _ in batch]))
        except Exception as exc:  # the disk or the file failed: each sender is told
            log.exception("could not queue %d deliveries", len(batch))
            results = [exc] * len(batch)
        for (_, reply), result in zip(batch, results, strict=True):
            reply(result)
