"""``infrabot serve``: compose the queue, the worker and the app, and run them under uvicorn.

The socket is bound here, before uvicorn starts, so a taken port is one clear error and
``--port 0`` can announce the port it got. uvicorn turns SIGTERM and SIGINT into a
graceful stop: it stops accepting, finishes the requests in flight, then the app's
lifespan stops the worker (see ``app._stop``).
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

import uvicorn

from bot.errors import InfrabotError
from bot.server.alerts import BASIC_ENV, TOKEN_ENV
from bot.server.app import Parts, build_app
from bot.server.child import ChildProcess
from bot.server.commit import GroupCommit
from bot.server.metrics import ServerMetrics
from bot.server.queue import DeliveryQueue
from bot.server.settings import SECRET_ENV, ServerSettings
from bot.server.worker import Process, Worker

log = logging.getLogger("infrabot.server")


def serve(settings: ServerSettings, process: Process) -> int:
    """Run until stopped; 0 after a graceful stop.  ``process`` works every queued delivery,
    GitHub's and Alertmanager's (``Delivery.source``)."""
    _configure_logging()
    if not settings.work_in_child:
        return _serve(settings, process, None)
    work = ChildProcess(process)  # before any thread starts: see bot.server.child
    try:
        return _serve(settings, work, work.close)
    finally:
        work.close(finished=False)


def _serve(settings: ServerSettings, work: Process, close: Callable[[bool], None] | None) -> int:
    queue = DeliveryQueue.open(settings.queue_path)
    try:
        sock = _bind(settings.host, settings.port)
    except InfrabotError:
        queue.close()
        raise
    recovered = queue.recover(settings.max_attempts)
    metrics = ServerMetrics(queue.depth)
    worker = Worker(queue, work, metrics, close=close)
    parts = Parts(settings, queue, GroupCommit(queue), worker, metrics)
    app = build_app(parts)
    host, port = sock.getsockname()[:2]
    _announce(settings, f"http://{_url_host(host)}:{port}", queue.depth(), recovered.requeued)
    for id_ in recovered.failed:
        log.warning("delivery %s failed: the server stopped during each of its attempts", id_)
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(int(settings.grace), 1),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it Nagle's algorithm adds ~40 ms to answers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InfrabotError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(settings: ServerSettings, url: str, queued: int, requeued: tuple[str, ...]) -> None:
    print(f"infrabot serve: listening on {url}", file=sys.stderr, flush=True)
    print(
        f"  GitHub deliveries: POST {url}/github; Alertmanager: POST {url}/alerts",
        file=sys.stderr,
    )
    print(f"  health: {url}/healthz; metrics: {url}/metrics", file=sys.stderr)
    note = f", {len(requeued)} requeued after a stop mid-work" if requeued else ""
    print(f"  queue: {settings.queue_path} ({queued} waiting{note})", file=sys.stderr)
    if settings.secret is None:
        print(
            f"  warning: {SECRET_ENV} is not set: every GitHub delivery will be refused (401)",
            file=sys.stderr,
        )
    if not settings.alerts.configured:
        print(
            f"  warning: neither {TOKEN_ENV} nor {BASIC_ENV} is set: every alert post will be"
            " refused (401)",
            file=sys.stderr,
        )
    sys.stderr.flush()


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
