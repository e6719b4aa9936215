"""One INFO line per request, never with the query string (GET /ask carries the question)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from qabot.http.response_status import ResponseStatus

# The API's one logger name, kept from before the package split: deployments filter on it.
log = logging.getLogger("qabot.api")


class AccessLogMiddleware:
    """One INFO line per request. Logs the raw path only: never the query string, which for
    GET /ask holds the question."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            # raw_path is still percent-encoded, so it cannot break the log line.
            raw_path = scope.get("raw_path") or scope.get("path", "").encode()
            path = raw_path.decode("ascii", "backslashreplace")
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info(
                "request method=%s path=%s status=%d ms=%.1f",
                scope["method"],
                path,
                status.code,
                elapsed_ms,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status.code,
                    "ms": elapsed_ms,
                },
            )
