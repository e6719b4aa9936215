"""Webhook mode for HTTPS deployments: Telegram POSTs updates to /telegram/<secret>.

``attach`` is the one place a webhook is added to a FastAPI app (the bot's own minimal app,
or the HTTP API's): it mounts the route and makes the app's lifespan start the bot and
register the webhook with Telegram. ``run_webhook`` serves a minimal app with it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from telegram import Update
from telegram.ext import Application

from qabot.config import Settings
from qabot.telegram.config import webhook_secret_of
from qabot.telegram.handlers import ALLOWED_UPDATES

log = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_url(settings: Settings) -> str:
    """The public URL Telegram posts to: QABOT_TELEGRAM_WEBHOOK_URL (the server's public
    base URL) followed by /telegram/<secret>, unless it already ends that way."""
    base = (settings.telegram_webhook_url or "").rstrip("/")
    path = f"{WEBHOOK_PREFIX}/{webhook_secret_of(settings)}"
    return base if base.endswith(path) else base + path


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def mount_webhook(app: FastAPI, application: Application, settings: Settings) -> None:
    """Add POST /telegram/{secret_path}: the path and Telegram's secret header must both
    equal QABOT_TELEGRAM_WEBHOOK_SECRET; the update goes to the application's queue. The
    application must be initialized and started (see ``webhook_lifespan``)."""
    secret = webhook_secret_of(settings)

    @app.post(WEBHOOK_PREFIX + "/{secret_path}", include_in_schema=False)
    async def telegram_webhook(secret_path: str, request: Request) -> Response:
        if not _same(secret_path, secret):
            return Response(status_code=404)
        if not _same(request.headers.get(SECRET_HEADER, ""), secret):
            log.warning("webhook call without the right secret header from %s", request.client)
            return Response(status_code=403)
        if not application.running:
            return Response(status_code=503)
        try:
            data = await request.json()
            update = Update.de_json(data, application.bot) if isinstance(data, dict) else None
        except Exception:  # malformed JSON or not an update
            update = None
        if update is None:
            return Response(status_code=400)
        await application.update_queue.put(update)
        return Response(status_code=200)


@asynccontextmanager
async def webhook_lifespan(application: Application, settings: Settings) -> AsyncIterator[None]:
    """Start the bot, point Telegram at our webhook, and stop the bot on exit."""
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    await application.bot.set_webhook(
        webhook_url(settings),
        secret_token=webhook_secret_of(settings),
        allowed_updates=ALLOWED_UPDATES,
    )
    log.info("Telegram webhook registered")
    try:
        yield
    finally:
        await application.stop()
        await application.shutdown()


def attach(app: FastAPI, application: Application, settings: Settings) -> None:
    """Serve ``application``'s webhook from ``app``: the route, and a lifespan that starts
    the bot and registers the webhook (replacing the app's own lifespan)."""
    mount_webhook(app, application, settings)
    app.router.lifespan_context = lambda _app: webhook_lifespan(application, settings)


def create_webhook_app(application: Application, settings: Settings) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    attach(app, application, settings)
    return app


def run_webhook(application: Application, settings: Settings) -> None:
    """Serve the webhook on QABOT_HOST:QABOT_PORT (behind an HTTPS reverse proxy)."""
    import uvicorn

    uvicorn.run(create_webhook_app(application, settings), host=settings.host, port=settings.port)
