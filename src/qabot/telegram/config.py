"""The bot's settings checks: the token and the webhook secret, refused with a clear
message (BotConfigError) before anything talks to Telegram."""

from __future__ import annotations

import re

from qabot.config import Settings
from qabot.service import BotConfigError

# What Telegram accepts as secret_token, at least MIN_WEBHOOK_SECRET characters long: the
# secret is both the webhook's path and the proof a request comes from Telegram, so a short
# one could be guessed (and could not be told apart from ordinary words in the logs).
MIN_WEBHOOK_SECRET = 16
MAX_WEBHOOK_SECRET = 256
WEBHOOK_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{MIN_WEBHOOK_SECRET},{MAX_WEBHOOK_SECRET}}}")


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
        problem = (
            "chưa được đặt" if not value
            else f"quá ngắn ({len(value)} ký tự)" if len(value) < MIN_WEBHOOK_SECRET
            else "quá dài" if len(value) > MAX_WEBHOOK_SECRET
            else "có ký tự không được phép"
        )  # fmt: skip
        raise BotConfigError(
            f"chế độ webhook cần QABOT_TELEGRAM_WEBHOOK_SECRET là một chuỗi bí mật khó đoán "
            f"gồm {MIN_WEBHOOK_SECRET}–{MAX_WEBHOOK_SECRET} ký tự A-Z, a-z, 0-9, _ hoặc - "
            f"(giá trị hiện tại {problem}); có thể tạo bằng lệnh: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return value


def webhook_configured(settings: Settings) -> bool:
    """Whether the bot takes its updates by webhook rather than by polling."""
    return bool(settings.telegram_webhook_url and settings.telegram_token)
