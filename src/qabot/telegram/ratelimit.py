"""A per-user sliding-window rate limit: at most ``limit`` questions per ``period`` seconds."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    wait_seconds: float = 0.0  # until the next question is allowed
    notify: bool = False  # first refusal of a streak: tell the user once, not every time


class RateLimiter:
    """Counts the events of each key in the last ``period`` seconds. A limit of 0 or less
    turns the limiter off."""

    def __init__(
        self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}
        self._notified_until: dict[Hashable, float] = {}

    def hit(self, key: Hashable) -> Decision:
        """Record one event for ``key`` if the limit allows it."""
        if self.limit <= 0:
            return Decision(True)
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.period:
            events.popleft()
        if len(events) < self.limit:
            events.append(now)
            self._notified_until.pop(key, None)
            if len(self._events) > 10_000:
                self._forget_idle(now)
            return Decision(True)
        free_at = events[0] + self.period
        notify = self._notified_until.get(key, float("-inf")) < now
        if notify:
            self._notified_until[key] = free_at
        return Decision(False, wait_seconds=free_at - now, notify=notify)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, e in self._events.items() if not e or e[-1] <= now - self.period]
        for key in idle:
            del self._events[key]
            self._notified_until.pop(key, None)
