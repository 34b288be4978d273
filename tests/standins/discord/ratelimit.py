"""Discord-style rate limiting: per-route buckets keyed by major parameter, and one-off 429s.

Buckets are opt-in (a stand-in without any answers every request); each one is a fixed window of
``limit`` requests per ``per`` seconds for every value of the route's major parameter (channel,
guild or webhook), which is how Discord scopes them. Answers carry the ``X-RateLimit-*`` headers
discord.py reads, and a 429 carries ``retry_after`` plus the ``Via`` header without which
discord.py takes a 429 for a Cloudflare ban and gives up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    name: str
    limit: int
    per: float
    # major parameter -> (window start, requests used in the window)
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass
class _Injected:
    route: str
    retry_after: float
    remaining: int
    is_global: bool


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request: the headers to send, and 429 details."""

    headers: dict[str, str]
    retry_after: float | None = None
    is_global: bool = False

    @property
    def limited(self) -> bool:
        """Whether the request must be answered with 429."""
        return self.retry_after is not None

    def body(self) -> dict[str, object]:
        """The JSON body of a 429."""
        return {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
            "code": 0,
        }


class RateLimiter:
    """Per-route buckets and injected one-off 429s, checked on every REST request.

    Routes are written as ``"METHOD /path/{param}"`` with discord.py's parameter names, e.g.
    ``"PATCH /channels/{channel_id}/messages/{message_id}"``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._injected: list[_Injected] = []

    def limit(self, *routes: str, limit: int, per: float, bucket: str | None = None) -> None:
        """Allow ``limit`` requests per ``per`` seconds on ``routes`` (one shared bucket)."""
        shared = _Bucket(name=bucket or f"bucket-{len(self._buckets) + 1}", limit=limit, per=per)
        for route in routes:
            self._buckets[route] = shared

    def inject_429(
        self, route: str, *, retry_after: float = 0.5, count: int = 1, is_global: bool = False
    ) -> None:
        """Answer the next ``count`` requests on ``route`` with 429 and ``retry_after``."""
        self._injected.append(_Injected(route, retry_after, count, is_global))

    def check(self, route: str, major: str) -> Verdict:
        """Decide on one request to ``route`` whose major parameter is ``major``."""
        for injected in self._injected:
            if injected.route == route and injected.remaining > 0:
                injected.remaining -= 1
                return self._too_many(injected.retry_after, "injected", 1, injected.is_global)
        bucket = self._buckets.get(route)
        if bucket is None:
            return Verdict(headers={})
        now = self._clock()
        start, used = bucket.windows.get(major, (now, 0))
        if now >= start + bucket.per:
            start, used = now, 0
        reset_after = start + bucket.per - now
        if used >= bucket.limit:
            return self._too_many(reset_after, bucket.name, bucket.limit, False)
        bucket.windows[major] = (start, used + 1)
        return Verdict(
            headers=_headers(bucket.name, bucket.limit, bucket.limit - used - 1, reset_after)
        )

    @staticmethod
    def _too_many(retry_after: float, bucket: str, limit: int, is_global: bool) -> Verdict:
        headers = _headers(bucket, limit, 0, retry_after)
        headers.update(
            {
                "Retry-After": str(math.ceil(retry_after)),
                "X-RateLimit-Scope": "global" if is_global else "user",
                # discord.py treats a 429 without Via as a Cloudflare ban and raises.
                "Via": "1.1 google",
            }
        )
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        return Verdict(headers=headers, retry_after=retry_after, is_global=is_global)


def _headers(bucket: str, limit: int, remaining: int, reset_after: float) -> dict[str, str]:
    return {
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
    }
