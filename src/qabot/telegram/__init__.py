"""The Telegram bot: questions in, short answers with cited passages out.

The bot talks to qabot only through QAService. ``run_bot`` runs it (long polling by
default, a webhook when QABOT_TELEGRAM_WEBHOOK_URL is set); ``attach_webhook`` serves its
webhook from another FastAPI app (the HTTP API's, in `qabot serve`); ``build_application``
gives the python-telegram-bot Application for other ways of running it.

Modules: ``config`` (settings checks), ``app`` (the Application), ``run`` (polling or
webhook), ``webhook`` (the webhook route), ``handlers`` (updates -> actions), ``actions``
(what the bot does), ``formatting`` (Telegram HTML), ``keyboards``, ``sending`` (flood
control, long messages), ``state``, ``ratelimit``, ``logs`` (secrets out of logs).
"""

from qabot.service import BotConfigError
from qabot.telegram.app import build_application
from qabot.telegram.run import attach_webhook, run_bot

__all__ = ["BotConfigError", "attach_webhook", "build_application", "run_bot"]
