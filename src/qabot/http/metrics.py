"""Prometheus metrics of one app: an ASGI middleware counting requests and timing /ask, and a
collector reading the service's own counters (answers, index, rebuilds, question log) when
/metrics is scraped.

Each app has its own CollectorRegistry, so several apps in one process (tests) do not share
or collide on metric names.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from qabot.http.response_status import ResponseStatus
from qabot.service import QAService

ASK_PATH = "/ask"
UNMATCHED = "unmatched"  # requests no route took: their raw paths would be unbounded labels
# Answers take 15-50 ms on the sample corpus, up to seconds on a loaded machine.
ASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The request metrics of one app, in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "qabot_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.ask_seconds = Histogram(
            "qabot_ask_request_seconds",
            "Time to answer /ask requests (GET and POST), in seconds.",
            buckets=ASK_BUCKETS,
            registry=registry,
        )


def route_label(scope: Scope) -> str:
    """The matched route's template ("/documents/{doc_id:path}"), never the raw path: it
    would hold document names, webhook secrets or anything a client invents."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            route = route_label(scope)
            self.metrics.requests.labels(scope["method"], route, str(status.code)).inc()
            if route == ASK_PATH:
                self.metrics.ask_seconds.observe(time.perf_counter() - started)


class ServiceCollector(Collector):
    """The service's counters, read at scrape time."""

    def __init__(self, service: QAService) -> None:
        self.service = service

    def collect(self):
        service = self.service
        answers = CounterMetricFamily(
            "qabot_answers",
            "Answers given to people, by channel and whether the reports answered.",
            labels=["channel", "found"],
        )
        for (channel, found), count in sorted(service.activity.answers().items()):
            answers.add_metric([channel, "true" if found else "false"], count)
        yield answers

        status = service.status()
        info = InfoMetricFamily("qabot_index", "The index version being served.")
        info.add_metric([], {"version": str(status.get("version") or "")})
        yield info
        yield GaugeMetricFamily(
            "qabot_index_passages", "Passages in the served index.", value=status["passages"]
        )
        yield GaugeMetricFamily(
            "qabot_index_documents", "Reports in the served index.", value=status["documents"]
        )

        rebuilds = service.activity.rebuilds()
        yield SummaryMetricFamily(
            "qabot_index_rebuild_seconds",
            "Duration of finished index rebuilds by this service, in seconds.",
            count_value=rebuilds.count,
            sum_value=rebuilds.seconds_total,
        )
        yield CounterMetricFamily(
            "qabot_index_rebuild_failures",
            "Index rebuilds by this service that failed.",
            value=rebuilds.failures,
        )
        if rebuilds.last_seconds is not None:
            yield GaugeMetricFamily(
                "qabot_index_last_rebuild_seconds",
                "Duration of the last finished rebuild, in seconds.",
                value=rebuilds.last_seconds,
            )

        question_log = service.question_log
        if question_log is not None:
            entries = CounterMetricFamily(
                "qabot_question_log_entries",
                "Answers given to the question log: written, dropped (queue full) or failed.",
                labels=["outcome"],
            )
            entries.add_metric(["written"], question_log.written)
            entries.add_metric(["dropped"], question_log.dropped)
            entries.add_metric(["failed"], question_log.failed)
            yield entries


def install_metrics(app, service: QAService) -> CollectorRegistry:
    """Count the app's requests (the middleware goes outside those added before, so it
    sees every answer) and register the service's counters; the app's registry."""
    registry = CollectorRegistry()
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    registry.register(ServiceCollector(service))
    return registry
