"""The server's Prometheus metrics, in a registry of its own (no module globals)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)


class ServerMetrics:
    """Counters for what arrives, what the worker makes of it, and how long each takes."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "infrabot_webhook_requests",
            "Webhook requests by source and result (queued, duplicate, or why refused).",
            ["source", "result"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "infrabot_deliveries",
            "Deliveries processed by the worker, by event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "infrabot_ack_duration_seconds",
            "Time from a delivery's last body byte to its durable acknowledgement.",
            ["source"],
            buckets=_FAST,
            registry=self.registry,
        )
        self.work_seconds = Histogram(
            "infrabot_work_duration_seconds",
            "Time the worker spent processing one delivery, by event.",
            ["event"],
            buckets=_SLOW,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "infrabot_queue_depth",
            "Deliveries waiting for a worker.",
            registry=self.registry,
        )
        self.queue_depth.set_function(lambda: float(queue_depth()))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
