"""Sending to Telegram: flood control waited out, long messages split, typing shown."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from qabot.telegram.formatting import split_message

log = logging.getLogger(__name__)

T = TypeVar("T")
FLOOD_ATTEMPTS = 4  # one call plus up to three retries after RetryAfter


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA (v22.2+)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


async def with_flood_retry(call: Callable[[], Awaitable[T]], attempts: int = FLOOD_ATTEMPTS) -> T:
    """Run a Bot API call; when Telegram answers RetryAfter, wait as told and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as error:
            if attempt == attempts:
                raise
            wait = retry_after_seconds(error)
            log.warning(
                "flood control: retrying in %.1f s (attempt %d of %d)", wait, attempt, attempts
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def send_html(
    bot: Bot,
    chat_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
    reply_to: int | None = None,
) -> list[Message]:
    """Send an HTML message, split into parts under Telegram's limit. The first part replies
    to ``reply_to``; the keyboard goes on the last part."""
    parts = split_message(text)
    messages = []
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        reply = (
            ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None and number == 1
            else None
        )

        def call(part: str = part, last: bool = last, reply: ReplyParameters | None = reply):
            return bot.send_message(
                chat_id,
                part,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard if last else None,
                reply_parameters=reply,
            )

        messages.append(await with_flood_retry(call))
    return messages


async def edit_html(bot: Bot, message: Message, text: str) -> None:
    """Replace the text of a message the bot sent (a progress note becoming the result)."""
    parts = split_message(text)
    await with_flood_retry(
        lambda: bot.edit_message_text(
            parts[0],
            chat_id=message.chat_id,
            message_id=message.message_id,
            parse_mode=ParseMode.HTML,
        )
    )
    for part in parts[1:]:
        await send_html(bot, message.chat_id, part)


async def show_typing(bot: Bot, chat_id: int) -> None:
    """The "typing…" status; purely cosmetic, so failures are only logged."""
    try:
        await bot.send_chat_action(chat_id, ChatAction.TYPING)
    except TelegramError as error:
        log.debug("sendChatAction failed: %s", error)


async def answer_callback(bot: Bot, query_id: str, text: str | None = None) -> None:
    """Stop the button's spinner (optionally with a short notice); failures are only logged."""
    try:
        await with_flood_retry(
            lambda: bot.answer_callback_query(query_id, text=text, show_alert=bool(text))
        )
    except TelegramError as error:
        log.debug("answerCallbackQuery failed: %s", error)
