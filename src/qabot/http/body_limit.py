"""Refuses request bodies over a size limit, before or while they are read."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qabot.http.errors import ApiError, error_response
from qabot.messages import human_size


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Refuses request bodies over a size limit: by Content-Length before the app runs, and
    while reading for chunked bodies, so an oversized body is never held in memory whole.
    POSTs to ``upload_path`` get ``upload_limit``, every other request ``default_limit``."""

    def __init__(
        self, app: ASGIApp, default_limit: int, upload_limit: int, upload_path: str
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit
        self.upload_path = upload_path

    def limit_for(self, scope: Scope) -> int:
        is_upload = scope.get("method") == "POST" and _route_path(scope) == self.upload_path
        return self.upload_limit if is_upload else self.default_limit

    def too_large(self, limit: int) -> ApiError:
        detail = f"Nội dung gửi lên vượt quá giới hạn {human_size(limit)}. Vui lòng gửi ít hơn."
        return ApiError(413, "body_too_large", detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = self.too_large(limit)
            await error_response(413, error.code, error.detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app's body read; the HTTPException handler answers 413.
                    raise self.too_large(limit)
            return message

        await self.app(scope, limited_receive, send)
