"""What the bot keeps between updates: its dependencies in ``bot_data`` and recent answers
(for the "Xem thêm" and source buttons) in ``chat_data``."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from qabot.config import Settings
from qabot.service import CitedPassage, QAService
from qabot.telegram.ratelimit import RateLimiter

DEPS_KEY = "qabot"
ANSWERS_KEY = "qabot_answers"
MAX_ANSWERS_PER_CHAT = 50
FILTERS_KEY = "qabot_document_filters"
MAX_FILTERS_PER_CHAT = 20


@dataclass
class Examples:
    version: str | None
    questions: list[str]


@dataclass
class BotDeps:
    service: QAService
    settings: Settings
    limiter: RateLimiter
    examples: Examples | None = None
    refused_chats: set[int] = field(default_factory=set)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.telegram_admins

    def chat_allowed(self, chat_id: int, user_id: int | None, private: bool) -> bool:
        """Every chat when there is no allow-list; otherwise listed chats, and admins in
        their private chats."""
        allowed = self.settings.telegram_allowed_chats
        return not allowed or chat_id in allowed or (private and self.is_admin(user_id))


def deps(bot_data: MutableMapping[Any, Any]) -> BotDeps:
    return bot_data[DEPS_KEY]


@dataclass
class AnswerState:
    """A question answered in a chat and the passages shown for it so far."""

    question: str
    shown: list[CitedPassage]
    busy: bool = False  # a "Xem thêm" for it is being answered


def _keep(chat_data: MutableMapping[Any, Any], key: str, value: Any, limit: int) -> str:
    """Keep ``value`` in the chat's ``key`` store under a new short id; past ``limit`` the
    oldest values are forgotten."""
    kept: OrderedDict[str, Any] = chat_data.setdefault(key, OrderedDict())
    short_id = secrets.token_urlsafe(6)
    kept[short_id] = value
    while len(kept) > limit:
        kept.popitem(last=False)
    return short_id


def _kept(chat_data: MutableMapping[Any, Any] | None, key: str, short_id: str) -> Any:
    return ((chat_data or {}).get(key) or {}).get(short_id)


def remember(chat_data: MutableMapping[Any, Any], state: AnswerState) -> str:
    """Keep an answer under a new short id; the oldest ones are forgotten."""
    return _keep(chat_data, ANSWERS_KEY, state, MAX_ANSWERS_PER_CHAT)


def recall(chat_data: MutableMapping[Any, Any] | None, answer_id: str) -> AnswerState | None:
    return _kept(chat_data, ANSWERS_KEY, answer_id)


def remember_filter(chat_data: MutableMapping[Any, Any], query: str) -> str:
    """Keep a /baocao filter under a short id for its page buttons (callback data holds 64
    bytes, a Vietnamese filter may not fit); the oldest ones are forgotten."""
    return _keep(chat_data, FILTERS_KEY, query, MAX_FILTERS_PER_CHAT)


def recall_filter(chat_data: MutableMapping[Any, Any] | None, filter_id: str) -> str | None:
    return _kept(chat_data, FILTERS_KEY, filter_id)
