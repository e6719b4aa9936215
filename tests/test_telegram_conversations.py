# ruff: noqa: F811  (the fixtures of test_telegram are imported by name)
"""Follow-up questions in the bot: private-chat history and its expiry, reply chains in
groups, /moi and the "Câu hỏi mới" button. Real python-telegram-bot against the loopback
Bot API stand-in of test_telegram."""

from __future__ import annotations

import time
from collections.abc import Callable

from qabot.telegram import formatting as fmt
from qabot.telegram import keyboards
from qabot.telegram.conversations import CONVERSATIONS_KEY, ConversationStore, conversations

from .test_telegram import GROUP_ID, USER_ID, Bot, FakeBotAPI, api, bot, start_bot  # noqa: F401

FIRST = "Đảng ủy Khu kinh tế Hải Phòng hiện có bao nhiêu đảng viên?"
FOLLOW_UP = "Ở Cần Thơ thì bao nhiêu?"
UNDERSTOOD = "Hiểu là:"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settled(bot: Bot, check: Callable[[ConversationStore], bool], timeout: float = 20) -> None:
    """A question is stored right after its answer is sent: wait for the store."""
    deadline = time.monotonic() + timeout
    while not check(conversations(bot.application.bot_data)):
        assert time.monotonic() < deadline, "the conversation was not stored"
        time.sleep(0.02)


def with_clock(bot: Bot) -> Clock:
    clock = Clock()
    bot.application.bot_data[CONVERSATIONS_KEY] = ConversationStore(clock=clock)
    return clock


def test_store_keeps_recent_questions_and_forgets_old_ones():
    clock = Clock()
    store = ConversationStore(max_turns=2, max_age=60, max_chats=2, clock=clock)
    for question in ("a", "b", "c"):
        store.add_recent(1, question)
    assert store.recent(1) == ["b", "c"]  # the last two only
    clock.now += 61
    assert store.recent(1) == []  # too old
    store.add_recent(2, "x")
    store.add_recent(3, "y")  # a third chat: the least recently used one goes
    assert len(store) == 2 and store.recent(1) == []
    store.add_thread(3, [10, 11], ["q1", "q2"])
    assert store.thread(3, 11) == ["q1", "q2"] and store.thread(3, 99) == []
    store.clear(3)
    assert store.thread(3, 10) == [] and store.recent(3) == []


def test_private_follow_up_is_read_with_the_previous_question(bot: Bot) -> None:
    with_clock(bot)
    bot.message(FIRST)
    first = bot.replies(1)[0]
    assert UNDERSTOOD not in first.text and "1.062" in first.text
    settled(bot, lambda store: len(store.recent(USER_ID)) == 1)
    bot.message(FOLLOW_UP)
    follow_up = bot.replies(2)[1]
    assert f"🔎 <i>{UNDERSTOOD}</i> Cần Thơ hiện có bao nhiêu đảng viên?" in follow_up.text
    assert "611" in follow_up.text
    assert keyboards.NEW in [b["callback_data"] for b in follow_up.buttons]


def test_a_follow_up_sent_before_the_answer_still_follows_it(bot: Bot) -> None:
    # A fast typer does not wait for the answer: the chat's updates are handled in order
    # (telegram/ordering.py), so the follow-up reads the first question as its history.
    with_clock(bot)
    bot.message(FIRST)
    bot.message(FOLLOW_UP)
    first, follow_up = bot.replies(2)
    assert "1.062" in first.text and UNDERSTOOD not in first.text
    assert f"🔎 <i>{UNDERSTOOD}</i> Cần Thơ hiện có bao nhiêu đảng viên?" in follow_up.text
    assert "611" in follow_up.text
    # Once both are answered, no chat is left in hand.
    settled(bot, lambda store: len(store.recent(USER_ID)) == 2)
    assert bot.application.update_processor.chats_in_hand == 0


def test_private_history_expires_after_thirty_minutes(bot: Bot) -> None:
    clock = with_clock(bot)
    bot.message(FIRST)
    bot.replies(1)
    settled(bot, lambda store: len(store.recent(USER_ID)) == 1)
    clock.now += 31 * 60
    bot.message(FOLLOW_UP)
    alone = bot.replies(2)[1]
    assert UNDERSTOOD not in alone.text


def test_moi_and_the_new_question_button_clear_the_history(bot: Bot) -> None:
    with_clock(bot)
    bot.message(FIRST)
    bot.replies(1)
    settled(bot, lambda store: len(store.recent(USER_ID)) == 1)
    bot.message("/moi")
    assert bot.replies(2)[1].text == fmt.NEW_CONVERSATION
    bot.message(FOLLOW_UP)
    assert UNDERSTOOD not in bot.replies(3)[2].text
    bot.message("/moi")
    bot.replies(4)

    bot.message(FIRST)
    bot.replies(5)
    settled(bot, lambda store: len(store.recent(USER_ID)) == 1)
    bot.message(FOLLOW_UP)
    rewritten = bot.replies(6)[5]
    assert UNDERSTOOD in rewritten.text
    settled(bot, lambda store: len(store.recent(USER_ID)) == 2)
    bot.press(rewritten, keyboards.NEW)
    assert bot.replies(7)[6].text == fmt.NEW_CONVERSATION
    bot.message(FOLLOW_UP)
    assert UNDERSTOOD not in bot.replies(8)[7].text


def test_group_reply_continues_the_answer_and_a_mention_starts_anew(
    bot: Bot, api: FakeBotAPI
) -> None:
    bot.message(f"@qabot_test_bot {FIRST}", chat_id=GROUP_ID)
    first = bot.replies(1, GROUP_ID)[0]
    settled(bot, lambda store: store.thread(GROUP_ID, first.message_id) == [FIRST])
    # A mention does not continue the conversation of the group.
    bot.message(f"@qabot_test_bot {FOLLOW_UP}", chat_id=GROUP_ID)
    assert UNDERSTOOD not in bot.replies(2, GROUP_ID)[1].text
    # A reply to the first answer does.
    first_message = api.message_result(first.params, first.message_id)
    bot.message(FOLLOW_UP, chat_id=GROUP_ID, reply_to=first_message)
    second = bot.replies(3, GROUP_ID)[2]
    assert "Cần Thơ hiện có bao nhiêu đảng viên?" in second.text
    settled(bot, lambda store: len(store.thread(GROUP_ID, second.message_id)) == 2)
    # A reply to that answer continues the chain: the subject changes again.
    bot.message(
        "Còn Đảng bộ Khối doanh nghiệp thành phố thì sao?",
        chat_id=GROUP_ID,
        reply_to=api.message_result(second.params, second.message_id),
    )
    third = bot.replies(4, GROUP_ID)[3]
    assert "Đảng bộ Khối doanh nghiệp thành phố hiện có bao nhiêu đảng viên?" in third.text
    assert "4.330" in third.text
    # /ask in a group starts a new conversation.
    bot.message(f"/ask@qabot_test_bot {FOLLOW_UP}", chat_id=GROUP_ID)
    assert UNDERSTOOD not in bot.replies(5, GROUP_ID)[4].text


def test_moi_is_in_the_command_menu(bot: Bot, api: FakeBotAPI) -> None:
    commands = api.wait_for("setMyCommands")[0].params["commands"]
    assert "moi" in str(commands)
