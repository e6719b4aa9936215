"""The questions a chat has asked, so a follow-up ("Còn năm 2024 thì sao?") is read with the
ones before it. In memory, questions only, bounded per chat and in total (least recently
used chats are forgotten first).

- A private chat's history is its recent questions: the last MAX_TURNS within MAX_AGE.
- In a group, a conversation is a reply chain: a reply to one of the bot's answers continues
  the conversation that answer belongs to; a new /ask or mention starts one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

CONVERSATIONS_KEY = "qabot_conversations"
MAX_TURNS = 5  # earlier questions a follow-up may lean on
MAX_AGE = 30 * 60.0  # seconds: an older question is a different conversation
MAX_CHATS = 1000
MAX_THREADS_PER_CHAT = 50  # bot answers in a group whose conversation is kept


@dataclass
class _ChatHistory:
    recent: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=MAX_TURNS))
    threads: OrderedDict[int, tuple[str, ...]] = field(default_factory=OrderedDict)


class ConversationStore:
    def __init__(
        self,
        max_turns: int = MAX_TURNS,
        max_age: float = MAX_AGE,
        max_chats: int = MAX_CHATS,
        max_threads: int = MAX_THREADS_PER_CHAT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_turns = max_turns
        self.max_age = max_age
        self.max_chats = max_chats
        self.max_threads = max_threads
        self.clock = clock
        self._chats: OrderedDict[int, _ChatHistory] = OrderedDict()
        self._lock = threading.Lock()

    def _chat(self, chat_id: int) -> _ChatHistory:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _ChatHistory(deque(maxlen=self.max_turns))
        self._chats.move_to_end(chat_id)
        while len(self._chats) > self.max_chats:
            self._chats.popitem(last=False)
        return chat

    def __len__(self) -> int:
        return len(self._chats)

    # --- private chats --------------------------------------------------------------------

    def recent(self, chat_id: int) -> list[str]:
        """The chat's questions of the last ``max_age`` seconds, oldest first."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            now = self.clock()
            return [q for at, q in chat.recent if now - at <= self.max_age]

    def add_recent(self, chat_id: int, question: str, asked_at: float | None = None) -> None:
        """Remember a question; ``asked_at`` (from ``clock``) when it came, not when answered."""
        with self._lock:
            at = self.clock() if asked_at is None else asked_at
            self._chat(chat_id).recent.append((at, question))

    # --- reply chains in groups ----------------------------------------------------------

    def thread(self, chat_id: int, answer_message_id: int) -> list[str]:
        """The conversation a bot answer belongs to (its questions, oldest first)."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return list(chat.threads.get(answer_message_id, ()))[-self.max_turns :]

    def add_thread(
        self, chat_id: int, answer_message_ids: Iterable[int], questions: list[str]
    ) -> None:
        """Remember that these bot messages answer the last of ``questions``."""
        with self._lock:
            chat = self._chat(chat_id)
            kept = tuple(questions[-(self.max_turns + 1) :])
            for message_id in answer_message_ids:
                chat.threads[message_id] = kept
                chat.threads.move_to_end(message_id)
            while len(chat.threads) > self.max_threads:
                chat.threads.popitem(last=False)

    def clear(self, chat_id: int) -> None:
        """Forget the chat's conversation (/moi, "Câu hỏi mới")."""
        with self._lock:
            self._chats.pop(chat_id, None)


def conversations(bot_data: MutableMapping[Any, Any]) -> ConversationStore:
    store = bot_data.get(CONVERSATIONS_KEY)
    if store is None:
        store = bot_data[CONVERSATIONS_KEY] = ConversationStore()
    return store
