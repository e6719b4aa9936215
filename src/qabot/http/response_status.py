"""The status of the response an ASGI app sends, for middleware that reports on it."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseStatus:
    """Wraps ``send`` and remembers the status the app answered with. Until the app answers
    it is 500: an app that fails first gets its 500 from the error middleware."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.code = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)
