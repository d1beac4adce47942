"""The ASGI app (Starlette): ``POST /github``, ``POST /alerts`` (Alertmanager),
``GET /healthz``, ``GET /metrics``, and ``GET /logs/<token>/<path>`` (a run's full log, for
the links in comments: ``logs.py``).

The event loop mostly moves bytes: reading a body stops at the size cap; the checks (HMAC
over the body, JSON) run inline for a typical body and in a thread for a large one, so
one large delivery does not hold up the others; the durable insert is the group commit's
(``bot.server.commit``). Nothing here waits for the work itself: a delivery (GitHub's or
Alertmanager's) is answered 202 once it is on disk, and the worker takes it from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.server.alerts import ALERTMANAGER, alert_delivery
from bot.server.commit import GroupCommit
from bot.server.intake import GITHUB, Answer, github_delivery
from bot.server.logs import read_log
from bot.server.metrics import CONTENT_TYPE_LATEST, ServerMetrics
from bot.server.queue import Delivery, DeliveryQueue, Offer
from bot.server.settings import ServerSettings
from bot.server.worker import Worker

log = logging.getLogger("infrabot.server")

_INLINE_CHECK = 256 * 1024  # bytes: HMAC and JSON of a body this size take well under 1 ms


@dataclass(frozen=True)
class Parts:
    """What the routes need, composed once by ``serve``."""

    settings: ServerSettings
    queue: DeliveryQueue
    commit: GroupCommit
    worker: Worker
    metrics: ServerMetrics


def build_app(parts: Parts) -> Starlette:
    async def github(request: Request) -> Response:
        body = await _read_capped(request, parts.settings.max_body)
        if body is None:
            return _answer(parts, GITHUB, Answer(413, "too_large", _too_large(parts.settings)))
        started = time.perf_counter()
        headers = {name.lower(): value for name, value in request.headers.items()}
        check = (parts.settings.secret_value(), headers, body, time.time())
        if len(body) <= _INLINE_CHECK:
            delivery = github_delivery(*check)
        else:
            delivery = await anyio.to_thread.run_sync(github_delivery, *check)
        if isinstance(delivery, Answer):
            return _answer(parts, GITHUB, delivery)
        return await _queue(parts, delivery, started)

    async def alerts(request: Request) -> Response:
        body = await _read_capped(request, parts.settings.max_body)
        if body is None:
            too_large = Answer(413, "too_large", _too_large(parts.settings))
            return _answer(parts, ALERTMANAGER, too_large)
        started = time.perf_counter()
        headers = {name.lower(): value for name, value in request.headers.items()}
        check = (parts.settings.alerts, headers, body, time.time())
        if len(body) <= _INLINE_CHECK:
            delivery = alert_delivery(*check)
        else:  # parsing a large group's alerts must not hold up other acknowledgements
            delivery = await anyio.to_thread.run_sync(alert_delivery, *check)
        if isinstance(delivery, Answer):
            return _answer(parts, ALERTMANAGER, delivery)
        return await _queue(parts, delivery, started)

    async def logs(request: Request) -> Response:
        where = parts.settings.logs_dir
        token, path = request.path_params["token"], request.path_params["path"]
        secret = parts.settings.secret_value()
        found = None
        if where is not None:
            found = await anyio.to_thread.run_sync(read_log, where, secret, token, path)
        if found is None:
            return PlainTextResponse("no such log\n", 404)
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private"}
        return PlainTextResponse(found.decode("utf-8", "replace"), 200, headers)

    async def healthz(request: Request) -> Response:
        states = await anyio.to_thread.run_sync(parts.queue.states)
        waiting = await anyio.to_thread.run_sync(parts.queue.queued_by_source)
        ok = parts.worker.alive
        body = {"status": "ok" if ok else "worker stopped", "queue": states, "queued": waiting}
        return JSONResponse(body, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        data = await anyio.to_thread.run_sync(parts.metrics.exposition)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        parts.commit.start()
        parts.worker.start()
        yield
        await anyio.to_thread.run_sync(_stop, parts)

    return Starlette(
        routes=[
            Route("/github", github, methods=["POST"]),
            Route("/alerts", alerts, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/logs/{token}/{path:path}", logs, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def _queue(parts: Parts, delivery: Delivery, started: float) -> Response:
    """Write ``delivery`` durably and answer: 202 queued, 200 duplicate, 503 not written."""
    try:
        offer = await _offer(parts.commit, delivery)
    except Exception as exc:  # the disk or the file failed; the sender retries on 5xx
        message = f"could not queue it: {exc}"
        return _answer(parts, delivery.source, Answer(503, "not_queued", message))
    if offer is Offer.QUEUED:
        parts.worker.wake()
    parts.metrics.requests.labels(delivery.source, offer.value).inc()
    parts.metrics.ack_seconds.labels(delivery.source).observe(time.perf_counter() - started)
    status = 202 if offer is Offer.QUEUED else 200
    return JSONResponse({"status": offer.value, "delivery": delivery.id}, status)


async def _offer(commit: GroupCommit, delivery: Delivery) -> Offer:
    """Hand ``delivery`` to the group commit and wait until it is on disk."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Offer] = loop.create_future()

    def settle(result: Offer | BaseException) -> None:
        if future.done():  # the client went away; the delivery is queued all the same
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    def reply(result: Offer | BaseException) -> None:  # called from the commit thread
        loop.call_soon_threadsafe(settle, result)

    commit.submit(delivery, reply)
    return await future


def _answer(parts: Parts, source: str, answer: Answer) -> Response:
    parts.metrics.requests.labels(source, answer.result).inc()
    if answer.status >= 400:
        log.warning("refused a %s delivery (%d): %s", source, answer.status, answer.message)
    key = "status" if answer.status < 400 else "error"
    return JSONResponse({key: answer.message}, answer.status)


def _stop(parts: Parts) -> None:
    """After uvicorn has finished the requests in flight: flush, then stop the worker."""
    parts.commit.stop()
    grace = parts.settings.grace
    if (running := parts.worker.current) is not None:
        log.info("stopping: waiting up to %.0fs for delivery %s to finish", grace, running.id)
    if parts.worker.stop(grace):
        parts.queue.close()
        log.info("worker stopped; the queue is closed")
    elif (current := parts.worker.abandoned) is not None:
        log.warning(
            "delivery %s still running after %.0fs: it will be requeued on the next start",
            current.id,
            grace,
        )


def _too_large(settings: ServerSettings) -> str:
    return f"refused: the body is over the {settings.max_body} byte limit"


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""  # nobody is left to answer; an empty body is refused, not queued
    return b"".join(chunks)
