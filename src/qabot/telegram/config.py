"""The bot's settings checks: the token and the webhook secret, refused with a clear
message (BotConfigError) before anything talks to Telegram."""

from __future__ import annotations

import re

from qabot.config import Settings
from qabot.service import BotConfigError

WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token


def token_of(settings: Settings) -> str:
    token = settings.telegram_token.get_secret_value().strip() if settings.telegram_token else ""
    if not token:
        raise BotConfigError(
            "chưa đặt QABOT_TELEGRAM_TOKEN (token của bot, lấy từ @BotFather) "
            "trong biến môi trường hoặc tệp .env"
        )
    return token


def webhook_secret_of(settings: Settings) -> str:
    secret = settings.telegram_webhook_secret
    value = secret.get_secret_value() if secret else ""
    if not WEBHOOK_SECRET.fullmatch(value):
        raise BotConfigError(
            "chế độ webhook cần QABOT_TELEGRAM_WEBHOOK_SECRET "
            "gồm 1–256 ký tự A-Z, a-z, 0-9, _ hoặc -"
        )
    return value


def webhook_configured(settings: Settings) -> bool:
    """Whether the bot takes its updates by webhook rather than by polling."""
    return bool(settings.telegram_webhook_url and settings.telegram_token)
