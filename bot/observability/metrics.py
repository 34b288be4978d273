"""The metrics the engine and the platform adapters record into.

>>> metrics = Metrics()
>>> metrics.turn_started("discord")
>>> metrics.turn_finished("discord", "ok", seconds=2.5, first_token_seconds=0.8)
>>> b"troupe_turns_total" in metrics.render()
True

Each :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`, so two
instances (two tests, two engines in one process) never share a value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.observability.cost import Prices, billed_tokens

__all__ = ["FIRST_TOKEN_BUCKETS", "TURN_BUCKETS", "WAIT_BUCKETS", "Metrics"]

#: Histogram buckets, in seconds, for a whole turn (a streamed reply takes a while).
TURN_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
#: Histogram buckets, in seconds, for the wait until the first token of a reply.
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Histogram buckets, in seconds, for a turn's wait for its conversation (the turns before it).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)


def _by_labels(metric: _Metric) -> Callable[..., _Metric]:
    """``metric.labels``, remembered: a turn records several metrics, and finding a child
    by its label values costs ten times the update. Label values come from small fixed
    sets (platforms, statuses, error codes), and Prometheus keeps every child anyway."""
    return functools.cache(metric.labels)


class Metrics:
    """Counters, gauges and histograms for one running bot, in Prometheus form.

    ``prices`` (M2-her's by default) turn token counts into ``troupe_cost_usd_total``.
    Every method is cheap and safe to call from any task or thread.
    """

    def __init__(self, *, prices: Prices | None = None) -> None:
        self._prices = prices or Prices()
        #: The registry :meth:`render` reads; add collectors of your own here if needed.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._in_flight = _by_labels(
            Gauge(
                "troupe_turns_in_flight",
                "Turns started and not finished yet.",
                ["platform"],
                registry=registry,
            )
        )
        self._turns = _by_labels(
            Counter(
                "troupe_turns",
                "Finished turns, by how they ended.",
                ["platform", "status"],
                registry=registry,
            )
        )
        self._turn_seconds = _by_labels(
            Histogram(
                "troupe_turn_seconds",
                "Time from the start of a turn to its end.",
                ["platform"],
                buckets=TURN_BUCKETS,
                registry=registry,
            )
        )
        self._first_token_seconds = _by_labels(
            Histogram(
                "troupe_first_token_seconds",
                "Time from the start of a turn to the first token of the reply.",
                ["platform"],
                buckets=FIRST_TOKEN_BUCKETS,
                registry=registry,
            )
        )
        self._tokens = _by_labels(
            Counter(
                "troupe_tokens",
                "M2-her tokens, in (prompt) and out (completion).",
                ["platform", "direction"],
                registry=registry,
            )
        )
        self._cost = _by_labels(
            Counter(
                "troupe_cost_usd",
                "Estimated M2-her cost in US dollars, from the configured prices.",
                ["platform"],
                registry=registry,
            )
        )
        self._api_errors = _by_labels(
            Counter(
                "troupe_api_errors",
                "Failed M2-her calls, by HTTP status or API status code, and error kind.",
                ["code", "kind"],
                registry=registry,
            )
        )
        self._sensitive_flags = _by_labels(
            Counter(
                "troupe_sensitive_flags",
                "Sensitive-content flags M2-her raised, by direction and type.",
                ["direction", "type"],
                registry=registry,
            )
        )
        self._platform_wait = _by_labels(
            Counter(
                "troupe_platform_rate_limit_wait_seconds",
                "Seconds spent waiting out platform rate limits.",
                ["platform"],
                registry=registry,
            )
        )
        self._undelivered = _by_labels(
            Counter(
                "troupe_replies_undelivered",
                "Replies the platform did not take after the sink's retries (kept out of "
                "later prompts).",
                ["platform"],
                registry=registry,
            )
        )
        self._cut = _by_labels(
            Counter(
                "troupe_replies_cut",
                "Replies cut while streaming: far longer than max_completion_tokens allows.",
                ["platform"],
                registry=registry,
            )
        )
        self._platform_failures = _by_labels(
            Counter(
                "troupe_platform_request_failures",
                "Platform API requests that got no answer or a server error.",
                ["platform"],
                registry=registry,
            )
        )
        self._turn_wait_seconds = _by_labels(
            Histogram(
                "troupe_turn_wait_seconds",
                "Time a turn waited for the turns before it in its conversation (in this "
                "process or, on a shared database, in another).",
                ["platform"],
                buckets=WAIT_BUCKETS,
                registry=registry,
            )
        )
        self._memory_updates = _by_labels(
            Counter(
                "troupe_memory_updates",
                "Memory updates (summarising what fell out of a window), by outcome.",
                ["platform", "outcome"],
                registry=registry,
            )
        )
        self._memory_tokens = _by_labels(
            Counter(
                "troupe_memory_tokens",
                "Tokens of memory updates (also counted in troupe_tokens_total).",
                ["platform", "direction"],
                registry=registry,
            )
        )
        self._memory_cost = _by_labels(
            Counter(
                "troupe_memory_cost_usd",
                "Estimated cost of memory updates (also counted in troupe_cost_usd_total).",
                ["platform"],
                registry=registry,
            )
        )
        self._queue_depth = _by_labels(
            Gauge(
                "troupe_queue_depth",
                "Messages waiting for their conversation's lane.",
                ["platform"],
                registry=registry,
            )
        )

    def memory_update(self, platform: str, outcome: str) -> None:
        """A memory update call (or its refusal) ended with ``outcome``: ``updated``, ``more``,
        ``lost``, ``empty``, ``failed``, ``unreadable`` or ``over_budget``."""
        self._memory_updates(platform, outcome).inc()

    def memory_tokens(self, platform: str, prompt: int, completion: int, total: int) -> None:
        """Count a memory update's usage and cost: in the totals of every call, and apart."""
        self.tokens(platform, prompt, completion, total)
        tokens_in, tokens_out = billed_tokens(prompt, completion, total)
        self._memory_tokens(platform, "in").inc(tokens_in)
        self._memory_tokens(platform, "out").inc(tokens_out)
        self._memory_cost(platform).inc(self._prices.cost_usd(prompt, completion, total))

    def turn_started(self, platform: str) -> None:
        """A turn began: one more in flight."""
        self._in_flight(platform).inc()

    def turn_finished(
        self, platform: str, status: str, seconds: float, first_token_seconds: float | None
    ) -> None:
        """A turn ended with ``status`` after ``seconds``; one fewer in flight.

        ``first_token_seconds`` is ``None`` when no text ever arrived (an error before the
        reply, a blocked input); such a turn adds nothing to the first-token histogram.
        """
        self._in_flight(platform).dec()
        self._turns(platform, status).inc()
        self._turn_seconds(platform).observe(seconds)
        if first_token_seconds is not None:
            self._first_token_seconds(platform).observe(first_token_seconds)

    def tokens(self, platform: str, prompt: int, completion: int, total: int) -> None:
        """Count one call's usage (:func:`~bot.observability.cost.billed_tokens`: a total
        without a split counts as input) and its estimated cost."""
        tokens_in, tokens_out = billed_tokens(prompt, completion, total)
        self._tokens(platform, "in").inc(tokens_in)
        self._tokens(platform, "out").inc(tokens_out)
        self._cost(platform).inc(self._prices.cost_usd(prompt, completion, total))

    def api_error(self, code: int | None, kind: str, *, http_status: int | None = None) -> None:
        """A failed M2-her call, labelled by its ``http_status`` when the answer was an HTTP
        error (401, 502 …), else by the API status ``code`` (an error inside a 200 answer),
        else ``none``: no answer at all (a timeout, a dropped connection). ``kind`` is the
        error class name."""
        label = http_status if http_status is not None else code
        self._api_errors("none" if label is None else str(label), kind).inc()

    def sensitive_flag(self, direction: str, type_name: str) -> None:
        """M2-her flagged the ``input`` or ``output`` of a call as ``type_name``."""
        self._sensitive_flags(direction, type_name).inc()

    def platform_wait(self, platform: str, seconds: float) -> None:
        """The adapter waited ``seconds`` for the platform's rate limit (a 429, a cadence)."""
        self._platform_wait(platform).inc(max(seconds, 0.0))

    def reply_undelivered(self, platform: str) -> None:
        """A finished reply could not be delivered on ``platform``."""
        self._undelivered(platform).inc()

    def reply_cut(self, platform: str) -> None:
        """A runaway reply on ``platform`` was cut while streaming."""
        self._cut(platform).inc()

    def platform_request_failed(self, platform: str) -> None:
        """A request to ``platform`` got no answer (timeout, network, full pool) or a 5xx."""
        self._platform_failures(platform).inc()

    def turn_waited(self, platform: str, seconds: float) -> None:
        """A turn on ``platform`` got its conversation after waiting ``seconds``."""
        self._turn_wait_seconds(platform).observe(seconds)

    def queue_depth(self, platform: str, depth: int) -> None:
        """``depth`` messages are now waiting for a lane on ``platform``."""
        self._queue_depth(platform).set(depth)

    def render(self) -> bytes:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)
