"""One handler per command, message kind and button; each reads the update and calls an
action. Registration order matters: the first matching handler of a group wins."""

from __future__ import annotations

import logging
import re

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import NetworkError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from qabot.telegram import actions, feedback, keyboards
from qabot.telegram import formatting as fmt
from qabot.telegram.conversations import conversations
from qabot.telegram.sending import answer_callback, send_html
from qabot.telegram.state import deps

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

NEW_MESSAGE = filters.UpdateType.MESSAGE  # edits of old messages are not questions
PRIVATE = filters.ChatType.PRIVATE
GROUPS = filters.ChatType.GROUPS


def _replied_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == bot_id)


def _addressed_to_bot(update: Update, context: Context) -> bool:
    """Whether an update asks something of this bot: anything in a private chat or a button;
    in groups, a command for this bot, a mention of it or a reply to it."""
    chat = update.effective_chat
    message = update.effective_message
    if update.callback_query is not None or (chat is not None and chat.type == ChatType.PRIVATE):
        return True
    if message is None or not message.text:
        return False
    username = context.bot.username
    command = re.match(r"^/\w+(?:@(\w+))?", message.text)
    if command is not None:
        return command.group(1) is None or command.group(1).lower() == (username or "").lower()
    replied = _replied_to_bot(message, context.bot.id)
    return actions.addressed_question(message.text, username, replied) is not None


# --- gate ---------------------------------------------------------------------------------


async def allow_list_gate(update: Update, context: Context) -> None:
    """Runs before every other handler: chats outside QABOT_TELEGRAM_ALLOWED_CHATS get one
    polite refusal, and nothing else."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None:
        raise ApplicationHandlerStop
    d = deps(context.bot_data)
    if d.chat_allowed(chat.id, user.id if user else None, chat.type == ChatType.PRIVATE):
        return
    query = update.callback_query
    if query is not None:
        await answer_callback(context.bot, query.id, fmt.REFUSAL)
    elif chat.id not in d.refused_chats and _addressed_to_bot(update, context):
        d.refused_chats.add(chat.id)
        log.info("refused chat %s (not in the allow-list)", chat.id)
        await send_html(context.bot, chat.id, fmt.REFUSAL)
    raise ApplicationHandlerStop


# --- commands -------------------------------------------------------------------------------


async def start_command(update: Update, context: Context) -> None:
    await actions.welcome(update, context)


async def help_command(update: Update, context: Context) -> None:
    await actions.welcome(update, context)


async def ask_command(update: Update, context: Context) -> None:
    message = update.effective_message
    question = actions.command_argument(message.text or "", context.bot.username)
    if not question:
        await send_html(context.bot, message.chat_id, fmt.ASK_USAGE)
        return
    if update.effective_chat.type == ChatType.PRIVATE:
        await _private_question(update, context, question)
    else:
        await _group_question(update, context, question, history=[])  # /ask starts anew


async def new_conversation_command(update: Update, context: Context) -> None:
    """/moi: forget the chat's conversation; the next question stands alone."""
    conversations(context.bot_data).clear(update.effective_chat.id)
    await send_html(context.bot, update.effective_chat.id, fmt.NEW_CONVERSATION)


async def sources_command(update: Update, context: Context) -> None:
    """/sources and /baocao, optionally with words to look for: /baocao hai phong 2024."""
    message = update.effective_message
    query = actions.command_argument(message.text or "", context.bot.username) if message else ""
    await actions.list_documents(update, context, query)


async def reindex_command(update: Update, context: Context) -> None:
    user = update.effective_user
    if not deps(context.bot_data).is_admin(user.id if user else None):
        await send_html(context.bot, update.effective_chat.id, fmt.ADMIN_ONLY_REINDEX)
        return
    await actions.reindex(update, context)


async def unknown_command(update: Update, context: Context) -> None:
    await send_html(context.bot, update.effective_chat.id, fmt.UNKNOWN_COMMAND)


# --- messages -------------------------------------------------------------------------------


async def _private_question(update: Update, context: Context, question: str) -> None:
    """A private chat's recent questions are the history of its next one."""
    store = conversations(context.bot_data)
    chat_id = update.effective_chat.id
    asked_at = store.clock()
    sent = await actions.answer_question(update, context, question, history=store.recent(chat_id))
    if sent:
        store.add_recent(chat_id, " ".join(question.split()), asked_at)


async def _group_question(
    update: Update, context: Context, question: str, history: list[str]
) -> None:
    """In a group, the bot's answer carries its conversation, for replies to continue."""
    store = conversations(context.bot_data)
    sent = await actions.answer_question(update, context, question, history=history)
    if sent:
        asked = [*history, " ".join(question.split())]
        store.add_thread(update.effective_chat.id, [m.message_id for m in sent], asked)


async def private_text(update: Update, context: Context) -> None:
    await _private_question(update, context, update.effective_message.text or "")


async def group_text(update: Update, context: Context) -> None:
    """Groups: only messages that mention the bot or reply to it; the rest is not for us."""
    message = update.effective_message
    replied = _replied_to_bot(message, context.bot.id)
    question = actions.addressed_question(message.text or "", context.bot.username, replied)
    if question is None:
        return
    # A reply to one of the bot's answers continues its conversation; a mention starts one.
    history = (
        conversations(context.bot_data).thread(message.chat_id, message.reply_to_message.message_id)
        if replied
        else []
    )
    await _group_question(update, context, question, history)


async def document_message(update: Update, context: Context) -> None:
    user = update.effective_user
    if not deps(context.bot_data).is_admin(user.id if user else None):
        await send_html(context.bot, update.effective_chat.id, fmt.ADMIN_ONLY_UPLOAD)
        return
    await actions.add_document(update, context)


# --- buttons --------------------------------------------------------------------------------


async def _pressed(update: Update, context: Context) -> keyboards.Callback | None:
    """Acknowledge a button press (Telegram shows a spinner until then) and read its data:
    None for data this bot never made (each handler's pattern already admits only its own,
    and parse fills the fields of that kind)."""
    query = update.callback_query
    await answer_callback(context.bot, query.id)
    return keyboards.parse(query.data)


async def example_button(update: Update, context: Context) -> None:
    callback = await _pressed(update, context)
    if callback is not None:
        await actions.ask_example(update, context, callback.number)


async def more_button(update: Update, context: Context) -> None:
    callback = await _pressed(update, context)
    if callback is not None:
        await actions.show_more(update, context, callback.answer_id)


async def source_button(update: Update, context: Context) -> None:
    callback = await _pressed(update, context)
    if callback is not None:
        await actions.show_source(update, context, callback.answer_id, callback.number)


async def documents_page_button(update: Update, context: Context) -> None:
    callback = await _pressed(update, context)
    if callback is not None:
        await actions.show_documents_page(update, context, callback.filter_id, callback.number)


async def new_question_button(update: Update, context: Context) -> None:
    query = update.callback_query
    await answer_callback(context.bot, query.id)
    conversations(context.bot_data).clear(update.effective_chat.id)
    await send_html(context.bot, update.effective_chat.id, fmt.NEW_CONVERSATION)


async def stale_button(update: Update, context: Context) -> None:
    """Buttons this version of the bot does not know (e.g. from an older version)."""
    await answer_callback(context.bot, update.callback_query.id, fmt.EXPIRED)


# --- errors ---------------------------------------------------------------------------------


async def on_error(update: object, context: Context) -> None:
    """Log any failure with its update id and apologise to the chat; the bot keeps running."""
    error = context.error
    if update is None and isinstance(error, NetworkError):
        log.warning("Telegram network problem: %s", error)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await send_html(context.bot, update.effective_chat.id, fmt.APOLOGY)
        except Exception as apology_error:
            log.warning("could not apologise for update %s: %s", update_id, apology_error)


def register_handlers(application: Application) -> None:
    application.add_handler(TypeHandler(Update, allow_list_gate), group=-1)
    feedback.register_handlers(application)  # first: a reply to its prompt is no question

    def command(names: str | list[str], callback) -> None:
        application.add_handler(CommandHandler(names, callback, filters=NEW_MESSAGE))

    command("start", start_command)
    command("help", help_command)
    command("ask", ask_command)
    command(["sources", "baocao"], sources_command)
    command("reindex", reindex_command)
    command("moi", new_conversation_command)
    application.add_handler(
        MessageHandler(NEW_MESSAGE & PRIVATE & filters.TEXT & ~filters.COMMAND, private_text)
    )
    application.add_handler(
        MessageHandler(NEW_MESSAGE & GROUPS & filters.TEXT & ~filters.COMMAND, group_text)
    )
    application.add_handler(
        MessageHandler(NEW_MESSAGE & PRIVATE & filters.Document.ALL, document_message)
    )
    application.add_handler(
        MessageHandler(NEW_MESSAGE & PRIVATE & filters.COMMAND, unknown_command)
    )
    application.add_handler(CallbackQueryHandler(example_button, pattern=keyboards.EXAMPLE_PATTERN))
    application.add_handler(CallbackQueryHandler(more_button, pattern=keyboards.MORE_PATTERN))
    application.add_handler(CallbackQueryHandler(source_button, pattern=keyboards.SOURCE_PATTERN))
    application.add_handler(
        CallbackQueryHandler(new_question_button, pattern=keyboards.NEW_PATTERN)
    )
    application.add_handler(
        CallbackQueryHandler(documents_page_button, pattern=keyboards.DOCUMENTS_PATTERN)
    )
    application.add_handler(CallbackQueryHandler(stale_button))
    application.add_error_handler(on_error)
