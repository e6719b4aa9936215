"""A per-client rate limit for the public API: a token bucket per client address.

Every request of a limited route takes one token from its client's bucket; a bucket holds
at most ``burst`` tokens and refills at ``per_minute`` / 60 a second. An empty bucket is
answered 429 with a Retry-After header (whole seconds until the next token). The client
is the request's address as uvicorn reports it: behind a reverse proxy, uvicorn takes it
from X-Forwarded-For when the proxy's address is trusted (--forwarded-allow-ips, or the
FORWARDED_ALLOW_IPS variable; 127.0.0.1 by default), see the README.

Admin routes (they need the admin token), the Telegram webhook (Telegram's servers; the
bot limits each user itself) and /metrics (the scraper) are not limited.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from qabot.http.errors import error_response

RATE_LIMITED = (
    "Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn. Vui lòng đợi {seconds} giây rồi thử lại."
)
# Buckets of clients idle long enough to be full again are forgotten once there are this
# many, so a flood of addresses cannot grow memory without bound.
MAX_TRACKED_CLIENTS = 10_000
ADMIN_PREFIXES = ("/admin", "/reindex", "/telegram/")
UNLIMITED_PATHS = frozenset({"/metrics"})


def is_limited(method: str, path: str) -> bool:
    """Whether a request counts against its client's rate limit: everything but the admin
    routes, the webhook and /metrics."""
    if path in UNLIMITED_PATHS or path.startswith(ADMIN_PREFIXES):
        return False
    # Uploads (POST /documents) and removals (DELETE /documents/...) are admin routes.
    return not (path.startswith("/documents") and method in ("POST", "DELETE"))


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by client; not thread-safe (it runs in the event loop)."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0.0 when allowed, else the seconds to wait."""
        now = self.clock()
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_CLIENTS:
                self._forget_idle(now)
            bucket = self.buckets[client] = Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst / self.rate
        self.buckets = {
            client: bucket
            for client, bucket in self.buckets.items()
            if now - bucket.updated < full_after
        }
        if len(self.buckets) >= MAX_TRACKED_CLIENTS:  # all active: forget the oldest half
            by_age = sorted(self.buckets.items(), key=lambda item: item[1].updated)
            self.buckets = dict(by_age[len(by_age) // 2 :])


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class RateLimitMiddleware:
    """Answers 429 {detail, code: "rate_limited"} with Retry-After to a client over its
    rate on a limited route."""

    def __init__(self, app: ASGIApp, per_minute: int, burst: int) -> None:
        self.app = app
        self.limiter = RateLimiter(per_minute, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["method"], _route_path(scope)):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.take(client[0] if client else "unknown")
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(wait))
        response = error_response(
            429,
            "rate_limited",
            RATE_LIMITED.format(seconds=seconds),
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)
