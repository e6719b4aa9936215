"""Counters of what a QAService did since it started, read by the /metrics endpoint.

Kept by the service (not by an HTTP app) so answers given through the bot and index
rebuilds by the docs watcher are counted as well as API requests.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class RebuildStats:
    count: int  # finished rebuilds, published or not
    failures: int
    seconds_total: float  # of the finished ones
    last_seconds: float | None


class Activity:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: Counter[tuple[str, bool]] = Counter()
        self._rebuilds = 0
        self._rebuild_failures = 0
        self._rebuild_seconds = 0.0
        self._last_rebuild_seconds: float | None = None

    def answered(self, channel: str, found: bool) -> None:
        with self._lock:
            self._answers[channel, found] += 1

    def rebuilt(self, seconds: float) -> None:
        with self._lock:
            self._rebuilds += 1
            self._rebuild_seconds += seconds
            self._last_rebuild_seconds = seconds

    def rebuild_failed(self) -> None:
        with self._lock:
            self._rebuild_failures += 1

    def answers(self) -> dict[tuple[str, bool], int]:
        """(channel, found) -> answers given."""
        with self._lock:
            return dict(self._answers)

    def rebuilds(self) -> RebuildStats:
        with self._lock:
            return RebuildStats(
                self._rebuilds,
                self._rebuild_failures,
                self._rebuild_seconds,
                self._last_rebuild_seconds,
            )
