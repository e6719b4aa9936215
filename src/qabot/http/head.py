"""HEAD on every GET route: the GET's status and headers, without its body.

FastAPI's routes answer only the methods they declare, so a HEAD (what link checkers,
uptime monitors and curl -I send) got 405. HTTP says HEAD is GET without the body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What the router records in the scope it is given: copied back so that the middleware
# outside this one (metrics by route template) sees a HEAD's route as it sees a GET's.
ROUTING_KEYS = ("route", "endpoint", "path_params")


class HeadMiddleware:
    """Runs a HEAD request as a GET and sends the GET's status line and headers (its
    Content-Length included, as HTTP allows) with an empty body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}
        finished = False

        async def without_body(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                finished = not message.get("more_body", False)
                if not finished:  # a streamed body: nothing is sent until its end
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(as_get, receive, without_body)
        finally:
            for key in ROUTING_KEYS:
                if key in as_get:
                    scope[key] = as_get[key]
