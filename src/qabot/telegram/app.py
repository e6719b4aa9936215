"""Building the python-telegram-bot Application around a QAService: handlers, command
menu, dependencies. Running it (polling or webhook) is in ``run``."""

from __future__ import annotations

import logging

from telegram import BotCommand, BotCommandScopeChat, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder, Defaults

from qabot.config import Settings
from qabot.service import QAService
from qabot.telegram.actions import current_examples
from qabot.telegram.config import token_of
from qabot.telegram.handlers import register_handlers
from qabot.telegram.logs import protect_secrets
from qabot.telegram.ordering import ChatOrderProcessor
from qabot.telegram.ratelimit import RateLimiter
from qabot.telegram.sending import with_flood_retry
from qabot.telegram.state import DEPS_KEY, BotDeps, deps

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("start", "Bắt đầu và xem hướng dẫn"),
    BotCommand("help", "Hướng dẫn sử dụng"),
    BotCommand("ask", "Đặt câu hỏi, ví dụ: /ask Đảng bộ có bao nhiêu đảng viên?"),
    BotCommand("baocao", "Danh sách báo cáo, ví dụ: /baocao hoặc /baocao hai phong 2024"),
    BotCommand("sources", "Danh sách báo cáo (giống /baocao)"),
    BotCommand("moi", "Bắt đầu cuộc trò chuyện mới (quên các câu hỏi trước)"),
]
ADMIN_COMMANDS = [
    *COMMANDS,
    BotCommand("reindex", "Cập nhật chỉ mục (quản trị viên)"),
    BotCommand("thongke", "Thống kê câu hỏi, ví dụ: /thongke 7d (quản trị viên)"),
]


def file_base_url(base_url: str) -> str:
    """The Bot API file URL beside a base URL: ".../bot" -> ".../file/bot"."""
    head, slash, tail = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{tail}" if slash else base_url


def build_application(service: QAService, settings: Settings) -> Application:
    """A python-telegram-bot Application with every handler, ready to poll or take webhooks."""
    token = token_of(settings)
    secret = settings.telegram_webhook_secret
    protect_secrets(token, secret.get_secret_value() if secret else None)
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .base_file_url(file_base_url(settings.telegram_base_url))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(ChatOrderProcessor())
        .post_init(post_init)
        .build()
    )
    application.bot_data[DEPS_KEY] = BotDeps(
        service, settings, RateLimiter(settings.telegram_rate_limit)
    )
    register_handlers(application)
    return application


async def post_init(application: Application) -> None:
    """At start: the command menu (admins also see /reindex), and the example questions,
    which also warms the service up."""
    d = deps(application.bot_data)
    bot = application.bot
    try:
        await with_flood_retry(lambda: bot.set_my_commands(COMMANDS))
    except TelegramError as error:
        log.warning("could not register the command list: %s", error)
    for admin in d.settings.telegram_admins:
        try:
            await with_flood_retry(
                lambda admin=admin: bot.set_my_commands(
                    ADMIN_COMMANDS, scope=BotCommandScopeChat(admin)
                )
            )
        except TelegramError as error:  # e.g. the admin never opened a chat with the bot
            log.warning("could not register the admin commands for %s: %s", admin, error)
    try:
        await current_examples(d)
    except Exception:  # /start will try again; the bot itself can run
        log.exception("choosing the example questions failed")
    log.info("Telegram bot @%s is ready", bot.username)
