"""The HTTP API: a thin FastAPI layer over QAService.

Each module has one job:

- ``app``: ``create_app`` puts the pieces below together around a loaded QAService.
- ``routes`` and ``admin``: the endpoints; they return the response models of ``schemas``,
  so FastAPI checks every answer against the documented schema.
- ``schemas``: the request and response models (the OpenAPI documentation).
- ``errors``: qabot's errors and HTTP errors -> JSON ``{"detail", "code"}``.
- ``body_limit`` and ``access_log``: one ASGI middleware each.
- ``serve``: binds the socket, sets up logging and runs uvicorn.

This package talks only to ``qabot.service`` (and the shared config, errors and messages);
it never imports another interface. Other interfaces that want to share the server (the
Telegram webhook) are attached by whoever starts it, through ``serve(..., extend=...)``.
"""

from qabot.http.app import create_app
from qabot.http.serve import serve

__all__ = ["create_app", "serve"]
