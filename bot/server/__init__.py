"""``infrabot serve``: GitHub webhooks in, a durable queue, one worker calling ``process``."""

from bot.server.queue import Delivery, DeliveryQueue, Offer
from bot.server.serve import serve
from bot.server.settings import ServerSettings
from bot.server.worker import Process, log_delivery

__all__ = [
    "Delivery",
    "DeliveryQueue",
    "Offer",
    "Process",
    "ServerSettings",
    "log_delivery",
    "serve",
]
