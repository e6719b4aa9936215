"""What the bot does, shared by the handlers: answer a question, page through sources, show
a paragraph, list reports, add a document, rebuild the index.

Service calls are CPU- or disk-bound, so they run in worker threads (asyncio.to_thread) and
the event loop keeps serving other chats.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from qabot.messages import INDEX_BUSY
from qabot.service import (
    MAX_TOP_K,
    Answer,
    DocumentPage,
    IndexBusyError,
    LibraryError,
    MorePassages,
    NotFoundError,
    NotReadyError,
    QuestionError,
    clean_question,
)
from qabot.telegram import formatting as fmt
from qabot.telegram import keyboards
from qabot.telegram.feedback import with_feedback_buttons
from qabot.telegram.sending import edit_html, send_html, show_typing, with_flood_retry
from qabot.telegram.state import (
    AnswerState,
    BotDeps,
    Examples,
    deps,
    recall,
    recall_filter,
    remember,
    remember_filter,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE_SIZE = 3  # sources per message; "Xem thêm" shows the next ones
EXAMPLE_COUNT = 3  # example questions offered by /start

Context = ContextTypes.DEFAULT_TYPE


# --- small helpers ------------------------------------------------------------------------


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    if chat is None:
        raise ValueError("update without a chat")
    return chat.id


def reply_to_for(update: Update) -> int | None:
    """The message to reply to: the button's message for a button; the question in groups
    (where several conversations mix); nothing in private chats."""
    if update.callback_query is not None:
        message = update.callback_query.message
        return message.message_id if message is not None else None
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or chat.type == ChatType.PRIVATE:
        return None
    return message.message_id


async def _reply(
    update: Update,
    context: Context,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
) -> list[Message]:
    return await send_html(context.bot, _chat_id(update), text, keyboard, reply_to_for(update))


def mention_pattern(username: str) -> re.Pattern[str]:
    return re.compile(rf"@{re.escape(username)}(?!\w)", re.IGNORECASE)


def addressed_question(text: str, bot_username: str | None, replied_to_bot: bool) -> str | None:
    """In a group: the question if the message mentions the bot or replies to it, else None."""
    if bot_username:
        pattern = mention_pattern(bot_username)
        if pattern.search(text):
            return pattern.sub(" ", text).strip()
    return text.strip() if replied_to_bot else None


def command_argument(text: str, bot_username: str | None) -> str:
    """What follows "/ask" (or "/ask@bot"), with a mention of the bot removed."""
    rest = re.sub(r"^/\S*", "", text.strip(), count=1)
    if bot_username:
        rest = mention_pattern(bot_username).sub(" ", rest)
    return rest.strip()


async def _within_rate_limit(update: Update, context: Context, d: BotDeps) -> bool:
    user = update.effective_user
    decision = d.limiter.hit(user.id if user else _chat_id(update))
    if decision.allowed:
        return True
    user_id = user.id if user else None
    log.info("rate limit: user %s must wait %.0f s", user_id, decision.wait_seconds)
    if decision.notify:
        limit = d.settings.telegram_rate_limit
        await _reply(update, context, fmt.format_rate_limited(limit, decision.wait_seconds))
    return False


# --- questions ----------------------------------------------------------------------------


def _asker(update: Update) -> str:
    """Who asked, for the question log (which stores only a salted hash of it)."""
    user = update.effective_user
    return f"user:{user.id}" if user is not None else f"chat:{_chat_id(update)}"


async def _ask(update: Update, context: Context, job: Callable[..., T], *args: Any) -> T | None:
    """A question to the service (an answer, more passages), or None after telling the user
    why there is none."""
    await show_typing(context.bot, _chat_id(update))
    try:
        return await asyncio.to_thread(job, *args)
    except NotReadyError:
        await _reply(update, context, fmt.NOT_READY)
    except QuestionError as error:
        await _reply(update, context, fmt.escape(str(error)))
    return None


async def answer_question(
    update: Update,
    context: Context,
    question: str,
    *,
    echo: bool = False,
    history: list[str] | None = None,
) -> list[Message]:
    """One reply: the short answer and the first sources, with buttons for more. ``history``
    holds the conversation's earlier questions. Returns the messages sent (none when the
    question was not asked: empty, rate-limited)."""
    d = deps(context.bot_data)
    try:
        question = clean_question(question)
    except QuestionError as error:
        await _reply(update, context, fmt.escape(str(error)))
        return []
    if not await _within_rate_limit(update, context, d):
        return []
    answer: Answer | None = await _ask(
        update,
        context,
        functools.partial(d.service.ask, channel="telegram", user=_asker(update)),
        question,
        PAGE_SIZE,
        history,
    )
    if answer is None:
        return []
    if not answer.found:
        hint = d.service.hint_for(answer)  # e.g. a question not in Vietnamese
        reply = fmt.format_not_found(question if echo else None, hint=hint)
        return await _reply(update, context, reply)
    passages = list(answer.passages[:PAGE_SIZE])
    answer_id = remember(context.chat_data, AnswerState(answer.interpreted_question, passages))
    more = len(answer.passages) >= PAGE_SIZE
    keyboard = keyboards.answer_keyboard(
        answer_id, 1, len(passages), more, new_question=bool(history)
    )
    keyboard = with_feedback_buttons(keyboard, answer.answer_id)
    text = fmt.format_answer(answer, passages, echo_question=echo)
    return await _reply(update, context, text, keyboard)


async def show_more(update: Update, context: Context, answer_id: str) -> None:
    """ "Xem thêm": the passages of the same question not shown yet (from the service)."""
    d = deps(context.bot_data)
    state = recall(context.chat_data, answer_id)
    if state is None:
        await _reply(update, context, fmt.EXPIRED)
        return
    if state.busy:  # a second press while the first is being answered
        return
    if len(state.shown) >= MAX_TOP_K:
        await _reply(update, context, fmt.NO_MORE)
        return
    if not await _within_rate_limit(update, context, d):
        return
    state.busy = True
    try:
        page: MorePassages | None = await _ask(
            update, context, d.service.more_passages, state.question, list(state.shown), PAGE_SIZE
        )
        if page is None:
            return
        fresh = page.passages
        if not fresh:
            await _reply(update, context, fmt.NO_MORE)
            return
        first = len(state.shown) + 1
        state.shown.extend(fresh)
        keyboard = keyboards.answer_keyboard(answer_id, first, len(fresh), page.more)
        await _reply(update, context, fmt.format_more(state.question, fresh, first), keyboard)
        await _drop_more_button(update, context)
    finally:
        state.busy = False


async def _drop_more_button(update: Update, context: Context) -> None:
    """The pressed message keeps its source buttons but loses "Xem thêm"."""
    query = update.callback_query
    message = query.message if query is not None else None
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = [
        [b for b in row if not str(b.callback_data or "").startswith(keyboards.MORE + ":")]
        for row in message.reply_markup.inline_keyboard
    ]
    markup = InlineKeyboardMarkup([row for row in rows if row])
    try:
        await with_flood_retry(
            lambda: context.bot.edit_message_reply_markup(
                message.chat_id, message.message_id, reply_markup=markup
            )
        )
    except Exception as error:  # cosmetic only
        log.debug("could not remove the Xem thêm button: %s", error)


async def show_source(update: Update, context: Context, answer_id: str, number: int) -> None:
    """A source button: the whole cited paragraph with its neighbours."""
    d = deps(context.bot_data)
    state = recall(context.chat_data, answer_id)
    if state is None or not 1 <= number <= len(state.shown):
        await _reply(update, context, fmt.EXPIRED)
        return
    passage = state.shown[number - 1]
    # a passage may run from a short heading into the next paragraphs: fetch enough around it
    radius = 1 + passage.text.strip().count("\n\n")
    try:
        paragraphs = await asyncio.to_thread(
            d.service.paragraph_context, passage.doc_id, passage.paragraph, radius
        )
    except (NotFoundError, NotReadyError):
        await _reply(update, context, fmt.SOURCE_GONE)
        return
    cited = fmt.cited_paragraphs(paragraphs, passage.text)
    emphasis = passage.text[slice(*passage.highlight)].strip() if passage.highlight else None
    await _reply(update, context, fmt.format_context(paragraphs, cited, emphasis))


# --- welcome, examples, reports -------------------------------------------------------------


async def _document_page(
    d: BotDeps, query: str = "", offset: int = 0, limit: int | None = None
) -> DocumentPage | None:
    """A page of the library (fmt.DOCUMENTS_PAGE reports unless told), newest first; None
    while no index is ready."""
    limit = fmt.DOCUMENTS_PAGE if limit is None else limit
    try:
        return await asyncio.to_thread(d.service.find_documents, query, offset, limit)
    except NotReadyError:
        return None


async def current_examples(d: BotDeps) -> list[str]:
    """Example questions for the live index version (the service chooses them once per
    version); kept so that an example button asks the question it showed."""
    version = d.service.status().get("version")
    if d.examples is not None and d.examples.version == version:
        return d.examples.questions
    questions = await asyncio.to_thread(d.service.example_questions, EXAMPLE_COUNT)
    d.examples = Examples(version, questions)
    return questions


async def welcome(update: Update, context: Context) -> None:
    d = deps(context.bot_data)
    documents = await _document_page(d, limit=fmt.WELCOME_DOCUMENTS)
    examples = await current_examples(d)
    user = update.effective_user
    text = fmt.format_welcome(
        user.first_name if user else None, documents, context.bot.username, bool(examples)
    )
    await _reply(update, context, text, keyboards.examples_keyboard(examples))


async def ask_example(update: Update, context: Context, index: int) -> None:
    d = deps(context.bot_data)
    questions = d.examples.questions if d.examples is not None else []
    if not 0 <= index < len(questions):
        await _reply(update, context, fmt.EXPIRED)
        return
    await answer_question(update, context, questions[index], echo=True)


async def list_documents(update: Update, context: Context, query: str = "") -> None:
    """/baocao [từ khóa]: the first page of the reports (those matching the words), with
    buttons to the next pages."""
    page = await _document_page(deps(context.bot_data), query)
    if page is None:
        await _reply(update, context, fmt.NOT_READY)
        return
    filter_id = keyboards.ALL_DOCUMENTS
    if page.query and page.total:
        filter_id = remember_filter(context.chat_data, page.query)
    await _reply(update, context, fmt.format_documents(page), _pages_keyboard(filter_id, page))


def _pages_keyboard(filter_id: str, page: DocumentPage) -> InlineKeyboardMarkup | None:
    return keyboards.documents_keyboard(filter_id, page.previous_offset, page.next_offset)


async def show_documents_page(
    update: Update, context: Context, filter_id: str, offset: int
) -> None:
    """ "‹ Trước" / "Sau ›": the pressed list shows another page, in place."""
    query = (
        "" if filter_id == keyboards.ALL_DOCUMENTS else recall_filter(context.chat_data, filter_id)
    )
    if query is None:
        await _reply(update, context, fmt.LIST_EXPIRED)
        return
    page = await _document_page(deps(context.bot_data), query, offset)
    message = update.callback_query.message if update.callback_query is not None else None
    if page is None or not isinstance(message, Message):
        await _reply(update, context, fmt.NOT_READY if page is None else fmt.LIST_EXPIRED)
        return
    try:
        await with_flood_retry(
            lambda: message.edit_text(
                fmt.format_documents(page),
                parse_mode=ParseMode.HTML,
                reply_markup=_pages_keyboard(filter_id, page),
            )
        )
    except BadRequest as error:
        # A second press on the same button: the page is already shown.
        if "not modified" not in str(error).lower():
            raise


# --- admin: the library ---------------------------------------------------------------------


async def add_document(update: Update, context: Context) -> None:
    """Download an admin's document, add it to the library and report what was indexed."""
    d = deps(context.bot_data)
    message = update.effective_message
    document = message.document if message is not None else None
    if document is None:
        return
    name = document.file_name or "tai-lieu"
    try:
        d.service.check_upload(name, document.file_size)
    except LibraryError as error:
        await _reply(update, context, "⚠️ " + fmt.escape(str(error)))
        return
    progress = await _reply(update, context, fmt.escape(fmt.ADDING.format(name=name)))
    try:
        telegram_file = await with_flood_retry(lambda: context.bot.get_file(document.file_id))
        data = bytes(await telegram_file.download_as_bytearray())
    except TelegramError as error:
        log.warning("downloading %s failed: %s", name, error)
        await edit_html(context.bot, progress[0], fmt.DOWNLOAD_FAILED)
        return
    result = await _library_job(context, progress[0], d.service.add_documents, [(name, data)])
    if result is None:
        return
    added, summary = result
    log.info("admin %s added %s", update.effective_user.id, added[0].doc_id)
    try:
        info = d.service.document(added[0].doc_id)
    except NotReadyError:
        info = None
    reason = next((s.reason for s in summary.skipped_files if s.source == added[0].doc_id), None)
    await edit_html(context.bot, progress[0], fmt.format_added(info, name, reason))


async def _library_job(
    context: Context, progress: Message, job: Callable[..., T], *args: Any
) -> T | None:
    """Run a change to the library off the event loop; on a refusal, say why and return None."""
    try:
        return await asyncio.to_thread(job, *args)
    except LibraryError as error:
        await edit_html(context.bot, progress, "⚠️ " + fmt.escape(str(error)))
    except IndexBusyError:
        await edit_html(context.bot, progress, INDEX_BUSY)
    return None


async def reindex(update: Update, context: Context) -> None:
    d = deps(context.bot_data)
    progress = await _reply(update, context, fmt.REINDEXING)
    summary = await _library_job(context, progress[0], d.service.rebuild)
    if summary is None:
        return
    log.info("admin %s rebuilt the index", update.effective_user.id)
    text = fmt.format_reindexed(
        summary.documents, summary.passages, summary.added, summary.changed, summary.removed
    )
    await edit_html(context.bot, progress[0], text)
