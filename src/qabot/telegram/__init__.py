"""The Telegram bot: questions in, short answers with cited passages out.

The bot talks to qabot only through QAService. ``run_bot`` runs it (long polling by
default, a webhook when QABOT_TELEGRAM_WEBHOOK_URL is set); ``build_application`` gives the
python-telegram-bot Application for other ways of running it.
"""

from qabot.telegram.app import BotConfigError, build_application, run_bot

__all__ = ["BotConfigError", "build_application", "run_bot"]
