"""Inline keyboards and their callback data.

Callback data is limited to 64 bytes, so buttons carry short ids only: the index of an
example question, the short id of an answer kept in ``chat_data`` plus a source number, or
the short id of a /baocao filter kept there plus a page's offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

EXAMPLE = "ex"
MORE = "more"
SOURCE = "src"
NEW = "new"  # "Câu hỏi mới": forget the conversation
DOCUMENTS = "docs"  # a page of /baocao: docs:<filter id or ALL_DOCUMENTS>:<offset>
ALL_DOCUMENTS = "all"
MAX_CALLBACK_BYTES = 64
SOURCES_PER_ROW = 5

EXAMPLE_PATTERN = rf"^{EXAMPLE}:\d+$"
MORE_PATTERN = rf"^{MORE}:[\w-]+$"
SOURCE_PATTERN = rf"^{SOURCE}:[\w-]+:\d+$"
NEW_PATTERN = rf"^{NEW}$"
DOCUMENTS_PATTERN = rf"^{DOCUMENTS}:[\w-]+:\d+$"


@dataclass(frozen=True)
class Callback:
    kind: str
    answer_id: str | None = None
    number: int | None = None  # an example's index, a source's number or a page's offset
    filter_id: str | None = None  # the /baocao filter a page button belongs to


def _data(*fields: object) -> str:
    data = ":".join(str(f) for f in fields)
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data longer than {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return data


def example_data(index: int) -> str:
    return _data(EXAMPLE, index)


def more_data(answer_id: str) -> str:
    return _data(MORE, answer_id)


def source_data(answer_id: str, number: int) -> str:
    return _data(SOURCE, answer_id, number)


def documents_data(filter_id: str, offset: int) -> str:
    return _data(DOCUMENTS, filter_id, offset)


def parse(data: str | None) -> Callback | None:
    """The callback behind a button's data, or None for data this bot never made."""
    fields = (data or "").split(":")
    try:
        if fields[0] == EXAMPLE and len(fields) == 2:
            return Callback(EXAMPLE, number=int(fields[1]))
        if fields[0] == MORE and len(fields) == 2 and fields[1]:
            return Callback(MORE, answer_id=fields[1])
        if fields[0] == SOURCE and len(fields) == 3 and fields[1]:
            return Callback(SOURCE, answer_id=fields[1], number=int(fields[2]))
        if fields[0] == DOCUMENTS and len(fields) == 3 and fields[1]:
            return Callback(DOCUMENTS, filter_id=fields[1], number=int(fields[2]))
    except ValueError:
        return None
    return None


def examples_keyboard(questions: Sequence[str]) -> InlineKeyboardMarkup | None:
    if not questions:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(q, callback_data=example_data(i))] for i, q in enumerate(questions)]
    )


def answer_keyboard(
    answer_id: str, first_number: int, count: int, more: bool, new_question: bool = False
) -> InlineKeyboardMarkup | None:
    """One button per source shown (its whole paragraph), "Xem thêm" if more may exist, and
    "Câu hỏi mới" when the answer continued a conversation."""
    buttons = [
        InlineKeyboardButton(f"📄 Nguồn [{n}]", callback_data=source_data(answer_id, n))
        for n in range(first_number, first_number + count)
    ]
    rows = [buttons[i : i + SOURCES_PER_ROW] for i in range(0, len(buttons), SOURCES_PER_ROW)]
    if more:
        rows.append([InlineKeyboardButton("Xem thêm ➕", callback_data=more_data(answer_id))])
    if new_question:
        rows.append([InlineKeyboardButton("🆕 Câu hỏi mới", callback_data=NEW)])
    return InlineKeyboardMarkup(rows) if rows else None


def documents_keyboard(
    filter_id: str, previous_offset: int | None, next_offset: int | None
) -> InlineKeyboardMarkup | None:
    """ "‹ Trước" and "Sau ›" under a page of /baocao, where there is such a page."""
    pages = (("‹ Trước", previous_offset), ("Sau ›", next_offset))
    buttons = [
        InlineKeyboardButton(label, callback_data=documents_data(filter_id, offset))
        for label, offset in pages
        if offset is not None
    ]
    return InlineKeyboardMarkup([buttons]) if buttons else None
