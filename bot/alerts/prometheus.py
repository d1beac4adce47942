"""Prometheus's HTTP API (instant queries) and the evidence a runbook walk reads from it.

Failures are values: ``QueryFailed(kind="down")`` when Prometheus cannot be reached or
answers nonsense, ``kind="rejected"`` when it refuses the PromQL (with its message), so a
caller can tell "no data" from "no answer" and never acts on missing data.
"""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from bot.alerts.runbooks import Answer, CheckStep, bind_labels


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)
    labels: dict[str, str]
    value: float


class QueryOk(BaseModel):
    model_config = ConfigDict(frozen=True)
    samples: tuple[Sample, ...]


class QueryFailed(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["down", "rejected"]
    message: str


QueryResult = QueryOk | QueryFailed


class PrometheusApi(Protocol):
    def query(self, expr: str) -> QueryResult: ...


class HttpPrometheus:
    """``GET /api/v1/query`` against ``base_url`` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str) -> QueryResult:
        url = f"{self.base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if exc.code not in (400, 422):
                return QueryFailed(kind="down", message=f"Prometheus answered HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return QueryFailed(kind="down", message=f"Prometheus at {self.base_url}: {reason}")
        return parse_query_response(body)


def parse_query_response(body: bytes) -> QueryResult:
    try:
        doc = json.loads(body)
        if doc.get("status") != "success":
            return QueryFailed(kind="rejected", message=str(doc.get("error", "query failed")))
        data = doc["data"]
        if data["resultType"] == "scalar":
            return QueryOk(samples=(Sample(labels={}, value=float(data["result"][1])),))
        if data["resultType"] != "vector":
            return QueryFailed(
                kind="rejected", message=f"expected an instant vector, got {data['resultType']}"
            )
        samples = tuple(
            Sample(labels=dict(r["metric"]), value=float(r["value"][1])) for r in data["result"]
        )
        return QueryOk(samples=tuple(s for s in samples if not math.isnan(s.value)))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        return QueryFailed(kind="down", message=f"not a Prometheus API answer: {exc}")


class PrometheusEvidence:
    """Answers a runbook's checks: PromQL against Prometheus, probes over the network."""

    def __init__(self, api: PrometheusApi | None, timeout: float = 5.0) -> None:
        self.api = api
        self.timeout = timeout

    def answer(self, step: CheckStep, labels: Mapping[str, str]) -> Answer:
        if step.query is not None:
            return self._query(step, labels)
        if step.probe is not None:
            return self._probe(step)
        return Answer(value=None, why=f"a person has to answer: {step.check}")

    def _query(self, step: CheckStep, labels: Mapping[str, str]) -> Answer:
        assert step.query is not None
        expr = bind_labels(step.query, labels)
        if expr is None:
            return Answer(value=None, why="the alert lacks a label the query needs")
        if self.api is None:
            return Answer(value=None, why=f"not evaluated (no Prometheus given): {expr}")
        result = self.api.query(expr)
        if isinstance(result, QueryFailed):
            return Answer(value=None, why=f"query failed ({result.kind}): {result.message}")
        hits = [s for s in result.samples if step.satisfied(s.value)]
        values = ", ".join(f"{s.value:g}" for s in result.samples[:5]) or "no samples"
        return Answer(value=bool(hits), why=f"`{expr}` returned {values}")

    def _probe(self, step: CheckStep) -> Answer:
        assert step.probe is not None
        if step.probe.http is not None:
            try:
                with urllib.request.urlopen(step.probe.http, timeout=self.timeout) as resp:
                    code = resp.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except (urllib.error.URLError, OSError) as exc:
                return Answer(value=False, why=f"GET {step.probe.http}: {exc}")
            return Answer(value=code < 400, why=f"GET {step.probe.http} answered {code}")
        host, _, port = (step.probe.tcp or "").rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=self.timeout):
                return Answer(value=True, why=f"{step.probe.tcp} accepted a connection")
        except OSError as exc:
            return Answer(value=False, why=f"{step.probe.tcp}: {exc}")
