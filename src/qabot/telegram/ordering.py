"""Each chat's updates handled in the order they came; different chats at once.

People type fast: "Còn ở Cần Thơ thì sao?" may arrive while the bot is still answering the
question it follows. Handled concurrently, the follow-up read the chat's history before the
first question was in it and was searched alone; a reply to the "what was wrong?" prompt
could likewise overtake the prompt being recorded. One lock per chat keeps a chat's updates
in order (asyncio locks wake their waiters first come, first served) while other chats go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# Updates handled at once across all chats (python-telegram-bot's default for concurrency).
MAX_CONCURRENT_UPDATES = 256


class ChatOrderProcessor(BaseUpdateProcessor):
    """An update processor that runs the updates of one chat one after another."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        # chat id -> its lock and how many updates hold or wait for it; dropped at zero,
        # so the table holds only chats with updates in hand.
        self._chats: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:  # nothing to keep in order with (a poll, an inline query)
            await coroutine
            return
        lock, users = self._chats.get(chat.id, (None, 0))
        lock = lock or asyncio.Lock()
        self._chats[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._chats[chat.id]
            if users == 1:
                del self._chats[chat.id]
            else:
                self._chats[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def chats_in_hand(self) -> int:
        """Chats with an update being handled or waiting (for tests and metrics)."""
        return len(self._chats)
