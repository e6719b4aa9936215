"""Feedback on answers and the admins' /thongke.

Every logged answer gets 👍 / 👎 buttons. A 👎 asks once, optionally, what was wrong: the
bot sends a prompt that Telegram clients answer as a reply, and that reply is kept as the
comment of the vote. /thongke gives admins the short form of the question report.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections import OrderedDict
from datetime import timedelta

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from qabot.service import LogUnavailableError, NotFoundError, parse_period
from qabot.telegram.sending import send_html, with_flood_retry
from qabot.telegram.state import deps

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

FEEDBACK = "fb"
HELPFUL, WRONG = "1", "0"
FEEDBACK_PATTERN = rf"^{FEEDBACK}:[01]:[\w-]+$"
PROMPTS_KEY = "qabot_feedback_prompts"  # chat_data: prompt message id -> answer id
MAX_PROMPTS_PER_CHAT = 20
DEFAULT_PERIOD = "30d"
SHORT_ROWS = 3

THANKS = "Cảm ơn bạn đã góp ý!"
ASK_WHAT_WAS_WRONG = (
    "Cảm ơn bạn đã báo câu trả lời chưa đúng. Nếu được, bạn hãy trả lời tin nhắn này để "
    "cho biết sai ở điểm nào (không bắt buộc)."
)
COMMENT_THANKS = "Cảm ơn bạn, góp ý đã được ghi nhận để cải thiện câu trả lời."
COMMENT_EXPIRED = "Góp ý này không còn gắn được với câu trả lời nào. Cảm ơn bạn!"
FEEDBACK_GONE = "Câu trả lời này đã quá cũ nên không ghi nhận được phản hồi."
FEEDBACK_OFF = "Hiện chưa ghi nhận được phản hồi. Vui lòng thử lại sau."
ADMIN_ONLY_STATS = "Chỉ quản trị viên mới xem được thống kê câu hỏi."
STATS_OFF = "Nhật ký câu hỏi đang tắt hoặc chưa có dữ liệu (QABOT_LOG_DB)."
STATS_USAGE = "Cách dùng: /thongke [khoảng thời gian], ví dụ /thongke 7d (ngày), 12h, 2w."
CHANNELS = {"api": "API", "telegram": "Telegram", "web": "Web", "cli": "dòng lệnh"}


# --- buttons ---------------------------------------------------------------------------------


def feedback_data(verdict: str, answer_id: str) -> str:
    return f"{FEEDBACK}:{verdict}:{answer_id}"


def with_feedback_buttons(
    keyboard: InlineKeyboardMarkup | None, answer_id: str | None
) -> InlineKeyboardMarkup | None:
    """The answer's keyboard with a 👍 / 👎 row, when the answer was logged."""
    if not answer_id:
        return keyboard
    rows = [list(row) for row in keyboard.inline_keyboard] if keyboard is not None else []
    rows.append(
        [
            InlineKeyboardButton("👍 Hữu ích", callback_data=feedback_data(HELPFUL, answer_id)),
            InlineKeyboardButton("👎 Chưa đúng", callback_data=feedback_data(WRONG, answer_id)),
        ]
    )
    return InlineKeyboardMarkup(rows)


async def _toast(context: Context, query_id: str, text: str) -> None:
    """A short notice over the chat that disappears by itself."""
    try:
        await with_flood_retry(lambda: context.bot.answer_callback_query(query_id, text=text))
    except TelegramError as error:
        log.debug("answerCallbackQuery failed: %s", error)


async def feedback_button(update: Update, context: Context) -> None:
    query = update.callback_query
    _, verdict, answer_id = (query.data or "").split(":", 2)
    d = deps(context.bot_data)
    helpful = verdict == HELPFUL
    try:
        await asyncio.to_thread(d.service.feedback, answer_id, helpful)
    except NotFoundError:
        await _toast(context, query.id, FEEDBACK_GONE)
        return
    except LogUnavailableError as error:
        log.warning("feedback on %s not stored: %s", answer_id, error)
        await _toast(context, query.id, FEEDBACK_OFF)
        return
    await _toast(context, query.id, THANKS)
    prompts: OrderedDict[int, str] = context.chat_data.setdefault(PROMPTS_KEY, OrderedDict())
    if helpful or answer_id in prompts.values() or update.effective_chat is None:
        return  # what was wrong is asked once per answer
    message = query.message
    reply_to = message.message_id if isinstance(message, Message) else None
    sent = await send_html(
        context.bot,
        update.effective_chat.id,
        html.escape(ASK_WHAT_WAS_WRONG, quote=False),
        ForceReply(selective=True, input_field_placeholder="Câu trả lời sai ở điểm nào?"),
        reply_to,
    )
    prompts[sent[-1].message_id] = answer_id
    while len(prompts) > MAX_PROMPTS_PER_CHAT:
        prompts.popitem(last=False)


class _ReplyToPrompt(filters.MessageFilter):
    """A text that replies to the bot's "what was wrong?" prompt."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(
            replied is not None
            and replied.from_user is not None
            and replied.from_user.is_bot
            and (replied.text or "").startswith(ASK_WHAT_WAS_WRONG[:40])
        )


async def feedback_comment(update: Update, context: Context) -> None:
    message = update.effective_message
    prompts = (context.chat_data or {}).get(PROMPTS_KEY) or {}
    # Kept, not popped: the prompt's answer is not asked about again.
    answer_id = prompts.get(message.reply_to_message.message_id)
    if answer_id is None:
        await send_html(context.bot, message.chat_id, COMMENT_EXPIRED)
        return
    try:
        await asyncio.to_thread(
            deps(context.bot_data).service.feedback, answer_id, None, message.text or ""
        )
    except (NotFoundError, LogUnavailableError) as error:
        log.warning("comment on %s not stored: %s", answer_id, error)
        await send_html(context.bot, message.chat_id, FEEDBACK_OFF)
        return
    await send_html(context.bot, message.chat_id, COMMENT_THANKS)


# --- /thongke ----------------------------------------------------------------------------------


def _period_words(period: timedelta) -> str:
    hours = int(period.total_seconds() // 3600)
    if hours % 24:
        return f"{hours} giờ qua"
    return f"{hours // 24} ngày qua"


def format_short_report(report: dict, period: timedelta) -> str:
    """/thongke: the report in a few lines (HTML)."""
    e = lambda text: html.escape(str(text), quote=False)  # noqa: E731
    lines = [f"📊 <b>Thống kê {_period_words(period)}</b>"]
    total = report["questions"]
    if not total:
        lines.append("Chưa có câu hỏi nào.")
        return "\n".join(lines)
    channels: dict[str, int] = {}
    for day in report["per_day"]:
        for channel, count in day["channels"].items():
            channels[channel] = channels.get(channel, 0) + count
    by_channel = ", ".join(f"{CHANNELS.get(c, c)} {n}" for c, n in sorted(channels.items()))
    latency = report["latency_ms"]
    feedback = report["feedback"]
    lines += [
        f"• {total} câu hỏi ({e(by_channel)}); tìm thấy câu trả lời {report['found_rate']:.0%}",
        f"• Thời gian trả lời: trung vị {latency['median']} ms, p95 {latency['p95']} ms",
        f"• Phản hồi: {feedback['helpful']} 👍, {feedback['wrong']} 👎",
    ]
    if report["unanswered"]:
        lines.append("\n❓ <b>Chưa có câu trả lời:</b>")
        lines += [
            f"{n}. {e(g['question'])} — {g['count']} lần"
            for n, g in enumerate(report["unanswered"][:SHORT_ROWS], 1)
        ]
    cited = [c for c in report["most_cited"] if c["answers"]]
    if cited:
        lines.append("\n📚 <b>Báo cáo được trích dẫn nhiều nhất:</b>")
        lines += [
            f"{n}. {e(c['title'])} — {c['answers']} câu trả lời"
            for n, c in enumerate(cited[:SHORT_ROWS], 1)
        ]
    lines.append("\nBản đầy đủ: lệnh <code>qabot report</code> hoặc API /admin/stats.")
    return "\n".join(lines)


async def thongke_command(update: Update, context: Context) -> None:
    d = deps(context.bot_data)
    chat_id = update.effective_chat.id
    user = update.effective_user
    if not d.is_admin(user.id if user else None):
        await send_html(context.bot, chat_id, ADMIN_ONLY_STATS)
        return
    argument = (context.args or [DEFAULT_PERIOD])[0]
    try:
        period = parse_period(argument)
    except ValueError:
        await send_html(context.bot, chat_id, STATS_USAGE)
        return
    try:
        report = await asyncio.to_thread(d.service.report, period)
    except LogUnavailableError:
        await send_html(context.bot, chat_id, STATS_OFF)
        return
    await send_html(context.bot, chat_id, format_short_report(report, period))


def register_handlers(application: Application) -> None:
    """Before the question handlers: a reply to the prompt is a comment, not a question."""
    new_message = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler("thongke", thongke_command, filters=new_message))
    application.add_handler(
        MessageHandler(
            new_message & filters.TEXT & ~filters.COMMAND & _ReplyToPrompt(), feedback_comment
        )
    )
    application.add_handler(CallbackQueryHandler(feedback_button, pattern=FEEDBACK_PATTERN))
