"""Building and running the Telegram application around a QAService."""

from __future__ import annotations

import logging
import re
import sys

from telegram import BotCommand, BotCommandScopeChat, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder, Defaults

from qabot.config import Settings
from qabot.service import QAService
from qabot.telegram.actions import current_examples
from qabot.telegram.handlers import ALLOWED_UPDATES, register_handlers
from qabot.telegram.logs import protect_secrets
from qabot.telegram.ratelimit import RateLimiter
from qabot.telegram.sending import with_flood_retry
from qabot.telegram.state import DEPS_KEY, BotDeps, deps

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("start", "Bắt đầu và xem hướng dẫn"),
    BotCommand("help", "Hướng dẫn sử dụng"),
    BotCommand("ask", "Đặt câu hỏi, ví dụ: /ask Đảng bộ có bao nhiêu đảng viên?"),
    BotCommand("baocao", "Danh sách báo cáo trong thư viện"),
    BotCommand("sources", "Danh sách báo cáo (giống /baocao)"),
    BotCommand("moi", "Bắt đầu cuộc trò chuyện mới (quên các câu hỏi trước)"),
]
ADMIN_COMMANDS = [*COMMANDS, BotCommand("reindex", "Cập nhật chỉ mục (quản trị viên)")]
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token


class BotConfigError(ValueError):
    """The bot cannot start with this configuration; the message says what to set."""


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
        .concurrent_updates(True)
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


def startup_problem(service: QAService, settings: Settings) -> str | None:
    """Why the bot cannot start, in one line for people; None when it can."""
    try:
        token_of(settings)
        if settings.telegram_webhook_url:
            webhook_secret_of(settings)
    except BotConfigError as error:
        return str(error)
    if service.index is None:
        return f"chưa có chỉ mục trong {service.index_dir}; hãy chạy: qabot index build"
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
    try:
        if settings.telegram_webhook_url:
            from qabot.telegram.webhook import run_webhook

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
