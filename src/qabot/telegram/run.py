"""Running the bot: long polling on its own, or a webhook that is attached to a FastAPI app
(its own minimal one, or the HTTP API's when `qabot serve` shares its server)."""

from __future__ import annotations

import sys

from fastapi import FastAPI
from telegram.error import InvalidToken, TelegramError

from qabot.config import Settings
from qabot.messages import no_index_in
from qabot.service import BotConfigError, QAService, freeze_loaded_objects
from qabot.telegram.app import build_application
from qabot.telegram.config import token_of, webhook_configured, webhook_secret_of
from qabot.telegram.handlers import ALLOWED_UPDATES
from qabot.telegram.webhook import attach, run_webhook


def attach_webhook(app: FastAPI, service: QAService, settings: Settings) -> bool:
    """Serve the bot's webhook from ``app`` (POST /telegram/<secret>) when
    QABOT_TELEGRAM_WEBHOOK_URL and QABOT_TELEGRAM_TOKEN are set; the app's lifespan then
    starts the bot and registers the webhook with Telegram. True when attached; raises
    BotConfigError on a bad webhook secret."""
    if not webhook_configured(settings):
        return False
    webhook_secret_of(settings)  # a weak secret is refused before anything starts
    attach(app, build_application(service, settings), settings)
    return True


def startup_problem(service: QAService, settings: Settings) -> str | None:
    """Why the bot cannot start, in one line for people; None when it can."""
    try:
        token_of(settings)
        if settings.telegram_webhook_url:
            webhook_secret_of(settings)
    except BotConfigError as error:
        return str(error)
    if service.index is None:
        return no_index_in(service.index_dir)
    return None


def run_bot(service: QAService, settings: Settings) -> int:
    """Run the bot until stopped (Ctrl+C): long polling, or a webhook server when
    QABOT_TELEGRAM_WEBHOOK_URL is set. Returns the process exit status."""
    problem = startup_problem(service, settings)
    if problem is not None:
        print(f"Lỗi: {problem}", file=sys.stderr)
        return 1
    application = build_application(service, settings)
    if settings.reload_seconds > 0:
        service.watch(settings.reload_seconds)
    freeze_loaded_objects()
    try:
        if settings.telegram_webhook_url:
            run_webhook(application, settings)
        else:
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        print(
            "Lỗi: Telegram không chấp nhận QABOT_TELEGRAM_TOKEN; hãy kiểm tra lại token.",
            file=sys.stderr,
        )
        return 1
    except TelegramError as error:
        print(f"Lỗi: không kết nối được với Telegram ({error}).", file=sys.stderr)
        return 1
    finally:
        service.close()
    return 0
