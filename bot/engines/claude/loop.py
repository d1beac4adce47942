"""The conversation loop: send, account, run tools, repeat, within caps.

Theory of operation: ``converse`` is the only place that talks to the Messages API, through
``send`` (one HTTP round trip, retried here on 429, 529, 5xx and lost connections with
exponential backoff, honouring ``retry-after``).  Each reply's usage is added to a
``Meter`` before anything else happens, so a cap on turns, tokens, cost or wall time is
checked on true numbers; when one is reached the loop returns ``Halt`` with the reason
(the ticket then says the agent stopped and why; nothing partial is drafted).  Tool calls
run through the ``Registry``; their results go back in one user message, errors flagged
``is_error``.  A ``max_tokens`` stop drops the cut-off tool calls and tells the model so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic

from bot.engines.claude.pricing import cost_usd
from bot.engines.claude.tools import Registry
from bot.model import EngineUsage

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class Limits:
    max_turns: int = 16
    max_tokens: int = 400_000
    """Input (including cache reads and writes) plus output tokens per ticket."""
    max_cost_usd: float = 0.50
    max_seconds: float = 300.0
    max_output_tokens: int = 4096
    max_retries: int = 4
    backoff_seconds: float = 1.0


@dataclass
class Meter:
    """What a ticket has spent so far (carried from the architect to the implementer)."""

    model: str
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    seconds: float = 0.0
    retries: int = 0

    def add(self, usage: Any) -> None:
        self.turns += 1
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cache_read_tokens += getattr(usage, "cache_read_input_tokens", None) or 0
        self.cache_write_tokens += getattr(usage, "cache_creation_input_tokens", None) or 0

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    @property
    def cost(self) -> float:
        return cost_usd(
            self.model,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
        )

    def usage(self, role: Literal["architect", "implementer"]) -> EngineUsage:
        return EngineUsage(
            engine="claude",
            role=role,
            model=self.model,
            turns=self.turns,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cost_usd=round(self.cost, 6),
            seconds=round(self.seconds, 3),
        )

    def over(self, limits: Limits, spent_before: EngineUsage | None) -> str | None:
        prior_tokens = prior_cost = prior_seconds = prior_turns = 0.0
        if spent_before is not None:
            prior_turns = spent_before.turns
            prior_tokens = (
                spent_before.input_tokens
                + spent_before.output_tokens
                + spent_before.cache_read_tokens
                + spent_before.cache_write_tokens
            )
            prior_cost, prior_seconds = spent_before.cost_usd, spent_before.seconds
        if self.turns + prior_turns >= limits.max_turns:
            return f"it reached the cap of {limits.max_turns} turns per ticket"
        if self.tokens + prior_tokens >= limits.max_tokens:
            return f"it reached the cap of {limits.max_tokens} tokens per ticket"
        if self.cost + prior_cost >= limits.max_cost_usd:
            return f"it reached the cap of ${limits.max_cost_usd:.2f} per ticket"
        if self.seconds + prior_seconds >= limits.max_seconds:
            return f"it reached the cap of {limits.max_seconds:.0f} s per ticket"
        return None


@dataclass(frozen=True)
class Halt:
    reason: str


@dataclass(frozen=True)
class Done:
    """A final tool succeeded."""

    tool: str


Send = Callable[[dict[str, Any]], Any]
"""One Messages API call with these keyword arguments → the ``Message``."""


def sender(client: anthropic.Anthropic, stream: bool) -> Send:
    def send(kwargs: dict[str, Any]) -> Any:
        if stream:
            with client.messages.stream(**kwargs) as reply:
                return reply.get_final_message()
        return client.messages.create(**kwargs)

    return send


def retry_after(headers: Any) -> float | None:
    """Seconds the API asked to wait (``retry-after-ms`` or ``retry-after``), if any."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name) if headers is not None else None
        try:
            if raw is not None:
                return max(0.0, float(raw) / scale)
        except ValueError:
            continue
    return None


@dataclass
class Conversation:
    send: Send
    registry: Registry
    system: list[dict[str, Any]]
    limits: Limits
    meter: Meter
    spent_before: EngineUsage | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    messages: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def run(self, first: str) -> Done | Halt:
        self.messages = [{"role": "user", "content": first}]
        started = self.clock()
        while True:
            self.meter.seconds = self.clock() - started
            over = self.meter.over(self.limits, self.spent_before)
            if over:
                return Halt(f"the agent stopped: {over}")
            reply = self._send_with_retries(started)
            if isinstance(reply, Halt):
                return reply
            self.meter.add(reply.usage)
            self.meter.seconds = self.clock() - started
            outcome = self._handle(reply)
            if outcome is not None:
                return outcome

    def _send_with_retries(self, started: float) -> Any:
        kwargs = {
            "model": self.meter.model,
            "max_tokens": self.limits.max_output_tokens,
            "system": self.system,
            "tools": self.registry.schemas(),
            "messages": cached_tail(self.messages),
        }
        for attempt in range(self.limits.max_retries + 1):
            try:
                return self.send(kwargs)
            except anthropic.APIStatusError as exc:
                if exc.status_code not in RETRY_STATUSES and exc.status_code < 500:
                    return Halt(f"the agent stopped: the API refused the request ({_said(exc)})")
                wait = retry_after(exc.response.headers)
                why = f"HTTP {exc.status_code}"
            except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
                wait, why = None, type(exc).__name__
            if attempt == self.limits.max_retries:
                return Halt(
                    f"the agent stopped: the API kept failing ({why}) after {attempt} retries"
                )
            wait = wait if wait is not None else self.limits.backoff_seconds * 2**attempt
            left = self.limits.max_seconds - (self.clock() - started)
            if wait > left:
                return Halt(f"the agent stopped: the API asked to wait {wait:.0f} s ({why})")
            self.meter.retries += 1
            self.log.append(f"retry {attempt + 1} after {why}, waiting {wait:.2f} s")
            self.sleep(wait)
        return Halt("the agent stopped: no reply")  # pragma: no cover - the loop returns above

    def _handle(self, reply: Any) -> Done | Halt | None:
        blocks = [b.model_dump(mode="json", exclude_none=True) for b in reply.content]
        if reply.stop_reason == "refusal":
            return Halt("the model declined to work on this request")
        if reply.stop_reason == "max_tokens":
            kept = [b for b in blocks if b.get("type") == "text"] or [
                {"type": "text", "text": "(cut off)"}
            ]
            self.messages.append({"role": "assistant", "content": kept})
            self.messages.append(
                {
                    "role": "user",
                    "content": "Your last reply hit the output limit and was cut off; nothing "
                    "in it was run. Continue in smaller steps.",
                }
            )
            return None
        self.messages.append({"role": "assistant", "content": blocks})
        calls = [b for b in reply.content if b.type == "tool_use"]
        if not calls:
            self.messages.append(
                {"role": "user", "content": "Finish by calling one of the final tools."}
            )
            return None
        results, done = [], None
        for call in calls:
            outcome = self.registry.call(call.name, call.input)
            self.log.append(f"{call.name}: {'error' if outcome.is_error else 'ok'}")
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": outcome.text,
            }
            if outcome.is_error:
                result["is_error"] = True
            results.append(result)
            if outcome.final and not outcome.is_error and done is None:
                done = Done(call.name)
        self.messages.append({"role": "user", "content": results})
        return done


def cached_tail(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with a cache breakpoint on the last block, so each turn reads the
    conversation so far from the cache instead of paying for it again (only the newest
    message carries the mark: the API allows four breakpoints)."""
    if not messages:
        return messages
    last = dict(messages[-1])
    content = last["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return [*messages[:-1], {**last, "content": blocks}]


def _said(exc: anthropic.APIStatusError) -> str:
    return f"HTTP {exc.status_code}"
