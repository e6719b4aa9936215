"""The Telegram bot: pure formatting and splitting, then end to end with the real
python-telegram-bot Application polling a stand-in Bot API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import html
import json
import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from telegram.error import RetryAfter
from telegram.ext import Application

from qabot.answer import Answer, CitedPassage
from qabot.catalogue import Catalogue
from qabot.config import Settings
from qabot.embedding import BundledEmbedder
from qabot.examples import MAX_CHECKED, choose_examples, title_question
from qabot.index import build_index
from qabot.index.meta import DocumentInfo, ParagraphRecord
from qabot.passages import PassageConfig
from qabot.service import YOUNG_GC_OBJECTS, ParagraphContext, QAService
from qabot.telegram import build_application, keyboards, run_bot, state
from qabot.telegram import formatting as fmt
from qabot.telegram.app import COMMANDS, file_base_url
from qabot.telegram.handlers import ALLOWED_UPDATES
from qabot.telegram.ratelimit import RateLimiter
from qabot.telegram.sending import retry_after_seconds, with_flood_retry

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123:TEST"
USER_ID = 111
ADMIN_ID = 999
GROUP_ID = -100555
QUESTION = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
NO_ANSWER_QUESTION = "Thời tiết Hà Nội ngày mai thế nào?"


# --- a stand-in Telegram Bot API server ---------------------------------------------------
#
# It serves the methods the bot calls (getMe, getUpdates with update_id/offset semantics and
# short long polls, sendMessage, editMessageText, answerCallbackQuery, sendChatAction,
# setMyCommands, deleteWebhook, getFile and file downloads), answers any other method with
# true (and notes it), and records every call so tests can assert on what the bot sent.

log = logging.getLogger(__name__)

MAX_POLL_SECONDS = 0.2  # answer long polls early: tests stay fast and stop promptly
JSON_FIELDS = {"reply_markup", "reply_parameters", "commands", "scope", "allowed_updates"}

BOT_USER = {
    "id": 4242,
    "is_bot": True,
    "first_name": "QA Bot",
    "username": "qabot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def message_id(self) -> int:
        """The id of the message this call sent or edited."""
        return int(self.result["message_id"])

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def buttons(self) -> list[dict]:
        markup = self.params.get("reply_markup") or {}
        return [b for row in markup.get("inline_keyboard", []) for b in row]


def _decode(params: dict[str, str]) -> dict[str, Any]:
    """Form fields as PTB sends them: strings, with objects JSON-encoded."""
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if key in JSON_FIELDS:
            try:
                decoded[key] = json.loads(value)
                continue
            except (TypeError, ValueError):
                pass
        decoded[key] = value
    return decoded


class FakeBotAPI:
    def __init__(self, token: str = "123:TEST") -> None:
        self.token = token
        self.bot_user = dict(BOT_USER)
        self.calls: list[Call] = []
        self.unknown_methods: list[str] = []
        self.files: dict[str, bytes] = {}  # file_id -> content
        self._failures: dict[str, list[tuple[int, dict]]] = {}
        self._updates: list[dict] = []
        self._next_update_id = 1
        self._next_message_id = 1000
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeBotAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                api._handle_post(self)

            def do_GET(self) -> None:
                api._handle_get(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._changed:
            self._changed.notify_all()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what tests do -----------------------------------------------------------------

    def fail_next(self, method: str, status: int, body: dict) -> None:
        """Answer the next call of ``method`` with this error instead."""
        with self._changed:
            self._failures.setdefault(method, []).append((status, body))

    def push(self, update: dict) -> int:
        """Queue an update (its update_id is assigned here) for getUpdates."""
        with self._changed:
            update_id = self._next_update_id
            self._next_update_id += 1
            self._updates.append({"update_id": update_id, **update})
            self._changed.notify_all()
        return update_id

    def new_message_id(self) -> int:
        with self._changed:
            self._next_message_id += 1
            return self._next_message_id

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._changed:
            calls = [c for c in self.calls if c.method == method and c.status == 200]
        return [c for c in calls if chat_id is None or c.chat_id == chat_id]

    def wait_for(
        self, method: str, count: int = 1, chat_id: int | None = None, timeout: float = 20.0
    ) -> list[Call]:
        """Block until ``count`` successful calls of ``method`` (to ``chat_id``) were made."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                calls = [
                    c
                    for c in self.calls
                    if c.method == method
                    and c.status == 200
                    and (chat_id is None or c.chat_id == chat_id)
                ]
                if len(calls) >= count:
                    return calls
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.status) for c in self.calls]
                    raise AssertionError(f"no {count} x {method} within {timeout}s; saw {seen}")
                self._changed.wait(left)

    # --- HTTP --------------------------------------------------------------------------

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        kind = "application/json" if not isinstance(body, bytes) else "application/octet-stream"
        # the bot may have stopped waiting (it is shutting down): nothing to answer then
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            request.send_response(status)
            request.send_header("Content-Type", kind)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

    def _handle_get(self, request: BaseHTTPRequestHandler) -> None:
        prefix = f"/file/bot{self.token}/"
        path = unquote(request.path)  # PTB quotes the file URL, ":" of the token included
        if not path.startswith(prefix):
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        file_path = path[len(prefix) :]
        file_id = file_path.rsplit("/", 1)[-1].split(".", 1)[0]
        with self._changed:
            self.calls.append(Call("download", {"file_path": file_path}))
            self._changed.notify_all()
        content = self.files.get(file_id)
        if content is None:
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        self._reply(request, 200, content)

    def _handle_post(self, request: BaseHTTPRequestHandler) -> None:
        token, _, method = request.path.lstrip("/").removeprefix("bot").partition("/")
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else ""
        kind = request.headers.get("Content-Type", "")
        if "json" in kind:
            params = json.loads(raw or "{}")
        else:
            params = _decode({k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()})
        if token != self.token:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            self._reply(request, 401, body)
            return
        with self._changed:
            failures = self._failures.get(method)
            failure = failures.pop(0) if failures else None
        if failure is not None:
            status, body = failure
            with self._changed:
                self.calls.append(Call(method, params, status))
                self._changed.notify_all()
            self._reply(request, status, body)
            return
        if method == "getUpdates":
            result = self._get_updates(params)
        else:
            result = self._answer(method, params)
        with self._changed:
            if method != "getUpdates":
                self.calls.append(Call(method, params, result=result))
            self._changed.notify_all()
        self._reply(request, 200, {"ok": True, "result": result})

    # --- methods -------------------------------------------------------------------------

    def _get_updates(self, params: dict[str, Any]) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), MAX_POLL_SECONDS)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                # updates below the offset are confirmed and forgotten, as Telegram does
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    return self._updates[:limit]
                self._changed.wait(deadline - time.monotonic())

    def message_result(self, params: dict[str, Any], message_id: int | None = None) -> dict:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": message_id or self.new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self.bot_user,
            "text": params.get("text", ""),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return self.bot_user
        if method == "sendMessage":
            return self.message_result(params)
        if method in ("editMessageText", "editMessageReplyMarkup"):
            return self.message_result(params, int(params["message_id"]))
        if method == "getFile":
            file_id = params["file_id"]
            content = self.files.get(file_id, b"")
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(content),
                "file_path": f"documents/{file_id}.bin",
            }
        if method not in (
            "answerCallbackQuery",
            "sendChatAction",
            "setMyCommands",
            "deleteWebhook",
            "setWebhook",
            "close",
            "logOut",
        ):
            log.warning("stand-in Bot API: unknown method %s", method)
            self.unknown_methods.append(method)
        return True


# --- formatting -----------------------------------------------------------------------------


def passage(text: str, rank: int = 1, highlight: tuple[int, int] | None = None) -> CitedPassage:
    return CitedPassage(
        rank=rank,
        text=text,
        score=0.5,
        doc_id=f"doc-{rank}.txt",
        title=f"Báo cáo <số {rank}> & tổng kết",
        date="2018-07-11",
        source=f"doc-{rank}.txt",
        paragraph=rank + 2,
        highlight=highlight,
    )


def test_highlight_escapes_and_bolds_the_span() -> None:
    text = "Trước <b>đó</b> & sau: gồm Ban Tổ chức, Ban Tuyên giáo."
    start = text.index("gồm")
    result = fmt.highlight(text, (start, len(text)))
    assert result == (
        "Trước &lt;b&gt;đó&lt;/b&gt; &amp; sau: <b>gồm Ban Tổ chức, Ban Tuyên giáo.</b>"
    )
    assert fmt.highlight(text, (5, 500)) == html.escape(text, quote=False)  # invalid span


def test_format_answer_lists_numbered_sources_with_escaped_text() -> None:
    raw = "  Nội dung <i>một</i>: câu trả lời ở đây.  "
    start = raw.index("câu")
    first = passage(raw, 1, highlight=(start, start + len("câu trả lời ở đây")))
    answer = Answer("Hỏi?", True, "câu trả lời ở đây", (first, passage("Đoạn hai.", 2)), 3.0)
    text = fmt.format_answer(answer, answer.passages)
    assert "💡 <b>Trả lời:</b> câu trả lời ở đây" in text
    assert "<b>[1]</b> <i>Báo cáo &lt;số 1&gt; &amp; tổng kết</i> — 11/07/2018, đoạn 3" in text
    assert "Nội dung &lt;i&gt;một&lt;/i&gt;: <b>câu trả lời ở đây</b>." in text
    assert "<b>[2]</b>" in text and "Đoạn hai." in text
    assert "<script" not in text and "<số" not in text


def test_not_found_message_has_no_sources() -> None:
    text = fmt.format_not_found()
    assert text.startswith("Không tìm thấy thông tin này trong các báo cáo hiện có.")
    assert "diễn đạt lại" in text and "Nguồn" not in text


def test_format_date() -> None:
    assert fmt.format_date("2024-03-29") == "29/03/2024"
    assert fmt.format_date(None) == "không rõ ngày"
    assert fmt.format_date("quý 3/2022") == "quý 3/2022"


def test_context_shows_every_paragraph_a_passage_covers() -> None:
    document = DocumentInfo("d.txt", "Báo cáo", "2020-01-02", "d.txt", "h", 9, 9)
    records = [
        ParagraphRecord("d.txt", n, "body", text)
        for n, text in enumerate(["Trước.", "1. Mục <a>", "Nội dung chính.", "Sau.", "Xa."], 3)
    ]
    context = ParagraphContext(document, 4, records)
    cited = fmt.cited_paragraphs(context, "1. Mục <a>\n\nNội dung chính.")
    assert cited == range(4, 6)
    text = fmt.format_context(context, cited, emphasis="chính")
    assert "<b>▶ Đoạn 4–5/9 (được trích dẫn)</b>" in text
    assert "<blockquote>1. Mục &lt;a&gt;\n\nNội dung <b>chính</b>.</blockquote>" in text
    assert "<i>Đoạn 3/9</i>\nTrước." in text and "<i>Đoạn 6/9</i>\nSau." in text
    assert "Xa." not in text


def test_format_documents_lists_newest_first() -> None:
    docs = [
        DocumentInfo("a", "Cũ", "2018-01-02", "a", "h", 1, 1),
        DocumentInfo("b", "Mới", "2024-05-06", "b", "h", 1, 1),
        DocumentInfo("c", "Không ngày", None, "c", "h", 1, 1),
    ]
    text = fmt.format_documents(Catalogue(docs).page())
    assert "3 báo cáo" in text
    assert text.index("Mới (06/05/2024)") < text.index("Cũ (02/01/2018)") < text.index("Không")
    assert "Báo cáo 1" not in text  # one page: no position, no tip


def test_format_documents_of_a_large_library_says_where_the_page_is() -> None:
    docs = [DocumentInfo(f"r{i}", f"Báo cáo {i}", None, f"r{i}", "h", 1, 1) for i in range(15_369)]
    page = Catalogue(docs).page(offset=1_000, limit=15)
    text = fmt.format_documents(page)
    assert "Thư viện hiện có 15.369 báo cáo" in text
    assert "Báo cáo 1.001–1.015 trong 15.369." in text
    assert text.count("• ") == 15 and len(text) < fmt.MAX_MESSAGE_CHARS
    welcome = fmt.format_welcome("Lan", Catalogue(docs).page(limit=5), "qabot", False)
    assert "Hiện có 15.369 báo cáo" in welcome and "… và 15.364 báo cáo khác" in welcome
    assert fmt.format_welcome("Lan", Catalogue([]).page(), None, False).count("chưa có báo cáo")


# --- splitting ------------------------------------------------------------------------------

TAG = re.compile(r"<(/?)(\w+)[^>]*>")


def balanced(part: str) -> bool:
    stack: list[str] = []
    for closing, name in TAG.findall(part):
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


def visible(text: str) -> str:
    return " ".join(html.unescape(TAG.sub("", text)).split())


def test_short_message_is_not_split() -> None:
    assert fmt.split_message("<b>Xin chào</b>") == ["<b>Xin chào</b>"]


def test_split_prefers_paragraph_boundaries() -> None:
    paragraphs = [f"Đoạn {i:02}: " + "chữ " * 200 for i in range(12)]  # 809 chars each
    text = "\n\n".join(paragraphs)
    parts = fmt.split_message(text, limit=4096)
    assert [p.count("Đoạn ") for p in parts] == [5, 5, 2]  # as many whole paragraphs as fit
    assert all(len(p) <= 4096 for p in parts)
    for part in parts:  # every part is made of whole paragraphs
        assert part.startswith("Đoạn ") and part.endswith("chữ")
    assert visible(" ".join(parts)) == visible(text)


def test_split_never_cuts_inside_tags_or_entities_and_reopens_tags() -> None:
    body = " ".join(f"từ&amp;{i} <i>nghiêng {i}</i>" for i in range(600))
    text = f'<b>Đầu</b>\n<blockquote><a href="https://x.vn/?a=1&amp;b=2">{body}</a></blockquote>'
    parts = fmt.split_message(text, limit=1000)
    assert len(parts) > 5
    for part in parts:
        assert len(part) <= 1000
        assert balanced(part), part
        assert not re.search(r"&[#\w]*$", part)  # no entity cut in half
        assert not re.search(r"<[^>]*$", part)  # no tag cut in half
    assert all(p.startswith('<blockquote><a href="https://x.vn/?a=1&amp;b=2">') for p in parts[1:])
    assert visible(" ".join(parts)) == visible(text)


def test_split_long_word_as_last_resort() -> None:
    text = "<b>" + "x" * 9000 + "</b>"
    parts = fmt.split_message(text, limit=4096)
    assert [len(p) <= 4096 for p in parts] == [True] * len(parts) == [True] * 3
    assert all(balanced(p) for p in parts)
    assert "".join(visible(p) for p in parts) == "x" * 9000


def test_split_counts_utf16_units() -> None:
    text = "😀" * 3000  # two UTF-16 units each
    parts = fmt.split_message(text, limit=4096)
    assert all(fmt.text_length(p) <= 4096 for p in parts)
    assert "".join(parts) == text


# --- keyboards, rate limit, examples, flood control ---------------------------------------


def test_callback_data_is_short_and_parses_back() -> None:
    markup = keyboards.answer_keyboard("AbC-d_12", first_number=19, count=3, more=True)
    buttons = [b for row in markup.inline_keyboard for b in row]
    assert [b.text for b in buttons][-1] == "Xem thêm ➕"
    for button in buttons:
        assert len(button.callback_data.encode()) <= 64
    assert keyboards.parse("src:AbC-d_12:21") == keyboards.Callback("src", "AbC-d_12", 21)
    assert keyboards.parse("more:AbC-d_12") == keyboards.Callback("more", "AbC-d_12")
    assert keyboards.parse("ex:2") == keyboards.Callback("ex", number=2)
    assert keyboards.parse("ex:two") is None and keyboards.parse(None) is None
    with pytest.raises(ValueError):
        keyboards.source_data("x" * 70, 1)


def test_rate_limiter_sliding_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, period=60, clock=lambda: now[0])
    assert limiter.hit(1).allowed and limiter.hit(1).allowed
    refused = limiter.hit(1)
    assert not refused.allowed and refused.notify and refused.wait_seconds == pytest.approx(60)
    assert not limiter.hit(1).notify  # told once per streak
    assert limiter.hit(2).allowed  # per user
    now[0] = 60.5
    assert limiter.hit(1).allowed
    assert RateLimiter(0).hit(1).allowed  # 0 turns it off


def test_examples_prefer_answerable_questions() -> None:
    chosen = choose_examples(lambda q: "viên" in q, titles=["Hội nghị sơ kết năm 2018"])
    assert chosen[:2] == [
        "Đảng bộ có bao nhiêu đảng viên?",
        "Kết nạp được bao nhiêu đảng viên mới?",
    ]
    assert chosen[2] == title_question("Hội nghị sơ kết năm 2018")
    assert len(choose_examples(lambda q: True)) == 3


def test_examples_ask_a_bounded_number_of_questions() -> None:
    # 15,000 reports whose title questions are all unanswerable: a dozen questions asked,
    # not 15,000, and the list is made up from the first (newest) titles.
    asked: list[str] = []

    def never(question: str) -> bool:
        asked.append(question)
        return False

    titles = (f"Báo cáo số {i}" for i in range(15_000))
    chosen = choose_examples(never, titles, count=3)
    assert len(asked) == MAX_CHECKED and len(set(asked)) == len(asked)
    assert chosen == [title_question(f"Báo cáo số {i}") for i in range(3)]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_retry_after_is_waited_out() -> None:
    attempts: list[float] = []

    async def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RetryAfter(1)
        return "sent"

    assert retry_after_seconds(RetryAfter(3)) == 3.0
    assert asyncio.run(with_flood_retry(flaky)) == "sent"
    assert attempts[1] - attempts[0] >= 0.95


def test_file_base_url() -> None:
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_base_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"


# --- end to end: harness -------------------------------------------------------------------


@dataclass
class Bot:
    """A real Application polling the stand-in API, run on its own event loop thread."""

    api: FakeBotAPI
    application: Application
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None
    user: dict = field(
        default_factory=lambda: {"id": USER_ID, "is_bot": False, "first_name": "Lan"}
    )

    def start(self) -> Bot:
        ready = threading.Event()
        errors: list[BaseException] = []

        async def start() -> None:
            app = self.application
            await app.initialize()
            await app.post_init(app)
            await app.updater.start_polling(
                poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES
            )
            await app.start()

        async def stop() -> None:
            app = self.application
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()

        def main() -> None:
            loop = self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(start())
                except BaseException as error:
                    errors.append(error)
                    return
                finally:
                    ready.set()
                loop.run_forever()
            finally:
                loop.run_until_complete(stop())
                loop.close()

        self.thread = threading.Thread(target=main, name="bot-under-test", daemon=True)
        self.thread.start()
        assert ready.wait(60), "the bot did not start"
        if errors:
            self.thread.join(10)
            raise errors[0]
        return self

    def stop(self) -> None:
        if self.loop is not None and self.thread is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)

    # --- updates the tests send ---------------------------------------------------------

    def message(
        self,
        text: str | None,
        chat_id: int = USER_ID,
        user: dict | None = None,
        reply_to: dict | None = None,
        document: dict | None = None,
    ) -> dict:
        message: dict[str, Any] = {
            "message_id": self.api.new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": user or self.user,
        }
        if chat_id < 0:
            message["chat"]["title"] = "Nhóm thử"
        if text is not None:
            message["text"] = text
            command = re.match(r"/\w+(@\w+)?", text)
            if command:
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": command.end()}
                ]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if document is not None:
            message["document"] = document
        self.api.push({"message": message})
        return message

    def press(self, sent: Call, data: str, user: dict | None = None) -> int:
        """Press a button of a message the bot sent; returns the update's id."""
        assert data in [b["callback_data"] for b in sent.buttons], (data, sent.buttons)
        message = self.api.message_result(sent.params, message_id=sent.message_id)
        return self.api.push(
            {
                "callback_query": {
                    "id": f"cq{self.api.new_message_id()}",
                    "from": user or self.user,
                    "chat_instance": "ci",
                    "data": data,
                    "message": message,
                }
            }
        )

    def replies(self, count: int = 1, chat_id: int = USER_ID, timeout: float = 20) -> list[Call]:
        return self.api.wait_for("sendMessage", count, chat_id, timeout)


def make_settings(api: FakeBotAPI, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_token": api.token,
        "telegram_base_url": api.base_url,
        "telegram_rate_limit": 100,
        "reload_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    server = FakeBotAPI(TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def start_bot(api: FakeBotAPI, service: QAService) -> Iterator[Callable[..., Bot]]:
    started: list[Bot] = []

    def start(qa: Any = None, **overrides: Any) -> Bot:
        application = build_application(qa or service, make_settings(api, **overrides))
        bot = Bot(api, application)
        started.append(bot)
        return bot.start()

    yield start
    for bot in started:
        bot.stop()


@pytest.fixture
def bot(start_bot: Callable[..., Bot]) -> Bot:
    return start_bot()


def button(call: Call, text_prefix: str) -> str:
    for b in call.buttons:
        if b["text"].startswith(text_prefix):
            return b["callback_data"]
    raise AssertionError(f"no button {text_prefix!r} in {call.buttons}")


# --- end to end: commands and questions ----------------------------------------------------


def test_start_greets_lists_reports_and_offers_three_examples(
    bot: Bot, api: FakeBotAPI, service: QAService
) -> None:
    commands = api.calls_of("setMyCommands")
    assert commands, "setMyCommands was not called at start"
    registered = {c["command"]: c["description"] for c in commands[0].params["commands"]}
    assert registered == {c.command: c.description for c in COMMANDS}
    assert {"start", "help", "ask", "baocao", "sources"} <= set(registered)

    bot.message("/start")
    reply = bot.replies()[0]
    assert reply.params["parse_mode"] == "HTML"
    assert "Xin chào Lan!" in reply.text
    documents = service.documents()
    assert f"Hiện có {len(documents)} báo cáo" in reply.text
    assert html.escape(documents[0].title, quote=False) in reply.text
    assert "/ask" in reply.text and "@qabot_test_bot" in reply.text
    data = [b["callback_data"] for b in reply.buttons]
    assert data == ["ex:0", "ex:1", "ex:2"]
    assert all(len(b["text"]) > 10 for b in reply.buttons)

    bot.message("/help")
    assert "Cách hỏi" in bot.replies(2)[1].text


def test_question_with_answer_has_sources_bold_and_buttons(bot: Bot, api: FakeBotAPI) -> None:
    bot.message(QUESTION)
    reply = bot.replies()[0]
    typing = api.calls_of("sendChatAction", USER_ID)
    assert typing and typing[0].params["action"] == "typing" and typing[0].at <= reply.at
    text = reply.text
    assert "💡 <b>Trả lời:</b>" in text and "Ban Tổ chức" in text
    assert "📚 <b>Nguồn trích dẫn:</b>" in text
    assert re.search(r"<b>\[1\]</b> <i>[^<]+</i> — \d\d/\d\d/\d{4}, đoạn \d+", text)
    assert "<b>[3]</b>" in text and "<b>[4]</b>" not in text
    bolds = re.findall(r"<blockquote[^>]*>[^<]*<b>([^<]+)</b>", text)
    assert bolds and "Ban Tổ chức" in bolds[0]
    assert len(text) <= 4096
    assert [b["text"] for b in reply.buttons] == [
        "📄 Nguồn [1]",
        "📄 Nguồn [2]",
        "📄 Nguồn [3]",
        "Xem thêm ➕",
    ]
    assert all(len(b["callback_data"].encode()) <= 64 for b in reply.buttons)
    assert "reply_parameters" not in reply.params  # private chats: no quoting


def test_question_typed_without_diacritics_says_how_it_was_read(bot: Bot) -> None:
    bot.message("Dang uy Khu kinh te Hai Phong co nhung co quan tham muu giup viec nao?")
    text = bot.replies()[0].text
    interpreted = re.search(r"🔎 (?:<i>)?Hiểu là:(?:</i>)? (.+)", text)
    assert interpreted, text
    assert interpreted.group(1) == (
        "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
    )
    assert text.index("🔎") < text.index("💡")
    assert "Ban Tuyên giáo" in text


def test_accented_question_shows_no_interpretation(bot: Bot) -> None:
    bot.message(QUESTION)
    assert "Hiểu là" not in bot.replies()[0].text


def test_question_without_answer_says_so_and_shows_nothing_else(bot: Bot) -> None:
    bot.message(NO_ANSWER_QUESTION)
    reply = bot.replies()[0]
    assert reply.text.startswith("Không tìm thấy thông tin này trong các báo cáo hiện có.")
    assert "diễn đạt lại" in reply.text
    assert "Nguồn" not in reply.text and "<blockquote" not in reply.text
    assert not reply.buttons


def test_question_in_another_language_is_asked_in_vietnamese(bot: Bot) -> None:
    bot.message("What is the weather in Hanoi tomorrow?")
    reply = bot.replies()[0]
    assert reply.text.startswith("Không tìm thấy thông tin này trong các báo cáo hiện có.")
    assert "câu hỏi bằng tiếng Việt" in reply.text
    assert "diễn đạt lại" not in reply.text


def report_line(document: DocumentInfo) -> str:
    return f"{html.escape(document.title, quote=False)} ({fmt.format_date(document.date)})"


def test_sources_and_baocao_list_the_reports_newest_first(bot: Bot, service: QAService) -> None:
    bot.message("/baocao")
    bot.message("/sources")
    newest = service.documents()
    assert [d.date for d in newest if d.date] == sorted(
        (d.date for d in newest if d.date), reverse=True
    )
    for reply in bot.replies(2):
        assert f"Thư viện hiện có {len(newest)} báo cáo" in reply.text
        positions = [reply.text.index(report_line(d)) for d in newest]
        assert positions == sorted(positions)  # in the service's order: newest first
        assert not reply.buttons  # one page holds them all


def test_baocao_pages_through_the_reports_in_place(
    bot: Bot, api: FakeBotAPI, service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A library of tens of thousands of reports must not become hundreds of messages.
    monkeypatch.setattr(fmt, "DOCUMENTS_PAGE", 2)
    newest = service.documents()
    bot.message("/baocao")
    first = bot.replies()[0]
    assert report_line(newest[0]) in first.text and report_line(newest[1]) in first.text
    assert report_line(newest[2]) not in first.text
    assert "Báo cáo 1–2 trong 5." in first.text and "/baocao &lt;từ khóa&gt;" in first.text
    assert [b["text"] for b in first.buttons] == ["Sau ›"]

    bot.press(first, button(first, "Sau ›"))
    second = api.wait_for("editMessageText")[0]
    assert second.message_id == first.message_id  # the list changes in place
    assert report_line(newest[2]) in second.text and report_line(newest[3]) in second.text
    assert report_line(newest[0]) not in second.text
    assert "Báo cáo 3–4 trong 5." in second.text
    assert [b["text"] for b in second.buttons] == ["‹ Trước", "Sau ›"]

    bot.press(second, button(second, "Sau ›"))
    last = api.wait_for("editMessageText", 2)[1]
    assert report_line(newest[4]) in last.text and "Báo cáo 5 trong 5." in last.text
    assert [b["text"] for b in last.buttons] == ["‹ Trước"]
    bot.press(last, button(last, "‹ Trước"))
    back = api.wait_for("editMessageText", 3)[2]
    assert back.text == second.text
    assert len(api.calls_of("sendMessage")) == 1


def test_baocao_filters_by_words_typed_without_diacritics(
    bot: Bot, api: FakeBotAPI, service: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "DOCUMENTS_PAGE", 1)
    place = "Hải Phòng"
    matching = [d for d in service.documents() if place in d.title]
    assert len(matching) >= 2, "the sample reports have several on one place"
    bot.message("/baocao hai phong")
    first = bot.replies()[0]
    assert f"Có {len(matching)} báo cáo khớp «hai phong»" in first.text
    assert report_line(matching[0]) in first.text
    bot.press(first, button(first, "Sau ›"))
    second = api.wait_for("editMessageText")[0]
    assert report_line(matching[1]) in second.text  # the next page keeps the filter
    assert "khớp «hai phong»" in second.text

    bot.message("/baocao không có báo cáo nào như thế")
    nothing = bot.replies(2)[1]
    assert "Không có báo cáo nào khớp «không có báo cáo nào như thế»" in nothing.text
    assert not nothing.buttons


def test_chats_keep_their_latest_answers_and_filters_only() -> None:
    chat_data: dict = {}
    answers = [state.remember(chat_data, state.AnswerState(f"q{i}", [])) for i in range(51)]
    filters = [state.remember_filter(chat_data, f"lọc {i}") for i in range(21)]
    assert state.recall(chat_data, answers[0]) is None  # the oldest answer is forgotten
    assert state.recall(chat_data, answers[-1]).question == "q50"
    assert state.recall_filter(chat_data, filters[0]) is None
    assert state.recall_filter(chat_data, filters[1]) == "lọc 1"
    assert state.recall_filter(chat_data, answers[-1]) is None  # separate stores
    assert state.recall(None, answers[-1]) is None


def test_document_page_buttons_carry_short_ids() -> None:
    data = keyboards.documents_data("abcdefgh", 15)
    assert keyboards.parse(data) == keyboards.Callback(
        keyboards.DOCUMENTS, number=15, filter_id="abcdefgh"
    )
    assert re.fullmatch(keyboards.DOCUMENTS_PATTERN, data)
    assert keyboards.parse("docs::3") is None and keyboards.parse("docs:all:x") is None
    assert keyboards.documents_keyboard("all", None, None) is None


def test_example_button_asks_the_question(bot: Bot, api: FakeBotAPI) -> None:
    bot.message("/start")
    welcome = bot.replies()[0]
    question = welcome.buttons[0]["text"]
    bot.press(welcome, "ex:0")
    answer = bot.replies(2)[1]
    assert api.calls_of("answerCallbackQuery")
    assert f"❓ <b>Câu hỏi:</b> {html.escape(question, quote=False)}" in answer.text
    assert "📚 <b>Nguồn trích dẫn:</b>" in answer.text
    assert answer.params["reply_parameters"]["message_id"] == welcome.message_id


def test_more_button_shows_the_next_passages(bot: Bot, api: FakeBotAPI) -> None:
    bot.message(QUESTION)
    first = bot.replies()[0]
    bot.press(first, button(first, "Xem thêm"))
    more = bot.replies(2)[1]
    assert "Các đoạn trích tiếp theo" in more.text
    assert "<b>[4]</b>" in more.text and "<b>[1]</b>" not in more.text
    shown = set(re.findall(r"<blockquote[^>]*>(.*?)</blockquote>", first.text, re.S))
    for quote in re.findall(r"<blockquote[^>]*>(.*?)</blockquote>", more.text, re.S):
        assert quote not in shown
    assert button(more, "📄 Nguồn [4]").startswith("src:")
    edits = api.wait_for("editMessageReplyMarkup")
    kept = [b["text"] for row in edits[0].params["reply_markup"]["inline_keyboard"] for b in row]
    assert kept == ["📄 Nguồn [1]", "📄 Nguồn [2]", "📄 Nguồn [3]"]


def test_source_button_shows_the_whole_paragraph(
    bot: Bot, api: FakeBotAPI, service: QAService
) -> None:
    bot.message(QUESTION)
    first = bot.replies()[0]
    bot.press(first, button(first, "📄 Nguồn [1]"))
    shown = bot.replies(2)[1]
    cited = service.ask(QUESTION, 3).passages[0]
    context = service.paragraph_context(cited.doc_id, cited.paragraph)
    assert f"📄 <b>{html.escape(context.document.title, quote=False)}</b>" in shown.text
    assert f"▶ Đoạn {cited.paragraph}" in shown.text
    plain = re.sub(r"</?b>", "", shown.text)  # the answer is bold inside its paragraph
    for record in context.paragraphs:
        assert html.escape(record.text.strip(), quote=False) in plain
    assert cited.highlight is not None
    answer = cited.text[slice(*cited.highlight)].strip()
    assert f"<b>{html.escape(answer, quote=False)}</b>" in shown.text  # the answer, in bold


def test_group_message_without_mention_is_ignored(bot: Bot, api: FakeBotAPI) -> None:
    bot.message(QUESTION, chat_id=GROUP_ID)
    asked = bot.message(f"@qabot_test_bot {NO_ANSWER_QUESTION}", chat_id=GROUP_ID)
    replies = bot.replies(1, GROUP_ID)
    time.sleep(0.3)
    assert len(api.calls_of("sendMessage", GROUP_ID)) == 1  # only the mention was answered
    assert replies[0].params["reply_parameters"]["message_id"] == asked["message_id"]
    assert replies[0].text.startswith("Không tìm thấy")


def test_group_mention_reply_and_ask_are_answered(bot: Bot, api: FakeBotAPI) -> None:
    mention = bot.message(f"@QAbot_test_bot {QUESTION}", chat_id=GROUP_ID)
    answer = bot.replies(1, GROUP_ID)[0]
    assert answer.params["reply_parameters"]["message_id"] == mention["message_id"]
    assert "Ban Tổ chức" in answer.text

    bot_message = api.message_result(answer.params, answer.message_id)
    bot.message(NO_ANSWER_QUESTION, chat_id=GROUP_ID, reply_to=bot_message)
    assert bot.replies(2, GROUP_ID)[1].text.startswith("Không tìm thấy")

    bot.message(f"/ask@qabot_test_bot {QUESTION}", chat_id=GROUP_ID)
    assert "Ban Tổ chức" in bot.replies(3, GROUP_ID)[2].text
    bot.message("/ask", chat_id=GROUP_ID)
    assert "/ask" in bot.replies(4, GROUP_ID)[3].text


def test_chat_outside_allow_list_gets_one_refusal(
    start_bot: Callable[..., Bot], api: FakeBotAPI
) -> None:
    bot = start_bot(telegram_allowed_chats=[GROUP_ID])
    bot.message(QUESTION)
    bot.message("/start")
    refusal = bot.replies(1)[0]
    assert "chỉ phục vụ" in refusal.text
    bot.message(QUESTION, chat_id=GROUP_ID)  # unaddressed in an allowed group: ignored
    bot.message(f"/ask {NO_ANSWER_QUESTION}", chat_id=GROUP_ID)
    assert bot.replies(1, GROUP_ID)[0].text.startswith("Không tìm thấy")
    time.sleep(0.3)
    assert len(api.calls_of("sendMessage", USER_ID)) == 1
    assert not api.calls_of("sendChatAction", USER_ID)


def test_rate_limit_answers_once_with_a_friendly_message(
    start_bot: Callable[..., Bot], api: FakeBotAPI
) -> None:
    bot = start_bot(telegram_rate_limit=2)
    for _ in range(2):
        bot.message(NO_ANSWER_QUESTION)
    bot.replies(2)
    bot.message(NO_ANSWER_QUESTION)
    limited = bot.replies(3)[2]
    assert "tối đa 2 câu mỗi phút" in limited.text and "giây" in limited.text
    bot.message(NO_ANSWER_QUESTION)  # still limited: no second notice
    bot.message("/baocao")  # not a question: not limited
    assert "báo cáo" in bot.replies(4)[3].text
    time.sleep(0.3)
    assert len(api.calls_of("sendMessage", USER_ID)) == 4


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_flood_control_is_waited_out_and_the_message_delivered(bot: Bot, api: FakeBotAPI) -> None:
    api.fail_next(
        "sendMessage",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    bot.message(NO_ANSWER_QUESTION)
    delivered = bot.replies()[0]
    assert delivered.text.startswith("Không tìm thấy")
    refused = [c for c in api.calls if c.method == "sendMessage" and c.status == 429]
    assert len(refused) == 1
    assert delivered.at - refused[0].at >= 0.95


# --- long replies, failures ----------------------------------------------------------------


# A report whose paragraphs are long: indexed one passage per paragraph, so the three
# sources of an answer together pass Telegram's 4,096 characters. With the default passage
# size (700 characters) an answer's three sources never get that long.
LONG_REPORT = """Khu công nghiệp Tràng Duệ đẩy mạnh đào tạo nghề và hoạt động công đoàn năm 2025
09:15 - 20/03/2025

Ngày 18/3/2025, Ban Quản lý Khu công nghiệp Tràng Duệ phối hợp với Công đoàn các khu công nghiệp \
tổ chức hội nghị đánh giá công tác đào tạo nghề & chăm lo đời sống công nhân. Báo cáo tại hội \
nghị cho biết năm qua khu công nghiệp có 48 doanh nghiệp đang hoạt động, sử dụng khoảng 27.500 \
lao động, trong đó lao động nữ chiếm gần 62%. Các doanh nghiệp điện tử & linh kiện như Tràng Duệ \
Electronics, Hải Minh Cable và Sao Việt Precision tiếp tục là nơi tuyển dụng nhiều nhất. Tỷ lệ \
lao động có tay nghề bậc 3 trở lên tăng từ 31% lên 38%, vượt chỉ tiêu mà nghị quyết đề ra. Tuy \
vậy, số lao động có thời gian làm việc <12 tháng vẫn chiếm tới 24%, cho thấy áp lực tuyển mới và \
đào tạo lại còn rất lớn. Ban Quản lý nhận định nhu cầu kỹ thuật viên bảo trì máy, vận hành dây \
chuyền SMT & kiểm định chất lượng sẽ còn tăng mạnh trong hai năm tới. Hội nghị thống nhất lấy \
chất lượng đào tạo tại chỗ làm thước đo chính, thay vì chỉ đếm số lớp học như những năm trước. \
Đại diện các doanh nghiệp đề nghị rút ngắn thủ tục cấp chứng chỉ kỹ năng để công nhân sớm được \
xếp bậc lương mới. Sở Lao động - Thương binh và Xã hội cam kết cử cán bộ đến tận khu công nghiệp \
tiếp nhận hồ sơ mỗi tháng một lần. Hội nghị có sự tham dự của hơn 150 đại biểu là lãnh đạo doanh \
nghiệp, cán bộ công đoàn cơ sở và công nhân tiêu biểu.

Về đào tạo nghề, Trung tâm đào tạo kỹ năng Tràng Duệ đã mở 64 lớp ngắn hạn với 3.120 học viên, \
tập trung vào hàn điện tử, vận hành máy CNC, an toàn hóa chất và tiếng Hàn giao tiếp cho tổ \
trưởng. Mỗi lớp kéo dài từ 4 đến 8 tuần, học viên được học lý thuyết buổi tối & thực hành ngay \
trên dây chuyền của doanh nghiệp vào ca chiều. Chương trình "Thợ giỏi Tràng Duệ" lần đầu tiên \
được tổ chức, có 412 công nhân đăng ký thi tay nghề, 57 người đạt danh hiệu thợ giỏi cấp khu. \
Giải nhất thuộc về chị Nguyễn Thị Hoa, tổ trưởng tổ SMT của Tràng Duệ Electronics, với thời gian \
thay khuôn chỉ 7 phút 40 giây. Trung tâm cũng thí điểm mô hình "kèm cặp 1 > 3", trong đó mỗi \
công nhân bậc cao hướng dẫn ba công nhân mới trong 90 ngày đầu tiên. Sau sáu tháng áp dụng, tỷ \
lệ công nhân mới nghỉ việc trong ba tháng đầu giảm từ 19% xuống còn 11%. Kinh phí đào tạo do \
doanh nghiệp chi trả 70%, phần còn lại từ quỹ hỗ trợ việc làm của thành phố & nguồn xã hội hóa. \
Phòng thực hành mới rộng 600 mét vuông được trang bị 20 máy hàn, 8 máy CNC mini và một dây \
chuyền SMT thu nhỏ do doanh nghiệp tài trợ. Giáo viên của trung tâm phần lớn là kỹ sư đang làm \
việc tại các nhà máy, dạy theo hợp đồng thỉnh giảng vào cuối tuần. Lớp học tiếng Anh buổi tối \
miễn phí thu hút 240 công nhân trẻ đăng ký ngay trong tuần đầu.

Hoạt động công đoàn có nhiều chuyển biến, toàn khu hiện có 41 công đoàn cơ sở với 24.860 đoàn \
viên, tỷ lệ đoàn viên trên tổng số lao động đạt 90,4%. Trong năm, Công đoàn các khu công nghiệp \
đã phát triển thêm 2.350 đoàn viên mới và thành lập 3 công đoàn cơ sở tại các doanh nghiệp có \
vốn đầu tư nước ngoài. Thỏa ước lao động tập thể được ký tại 36 doanh nghiệp, trong đó 21 bản có \
nhiều điều khoản có lợi hơn luật như phụ cấp nhà trọ, hỗ trợ gửi trẻ & thưởng chuyên cần. Mức \
lương bình quân của công nhân khu công nghiệp đạt 9,2 triệu đồng mỗi tháng, tăng 8% so với năm \
trước. Công đoàn đã tổ chức 126 cuộc đối thoại định kỳ tại nơi làm việc, giải quyết dứt điểm 214 \
kiến nghị về ca kíp, suất ăn & điều kiện vệ sinh. Không có cuộc ngừng việc tập thể nào xảy ra, \
điều mà báo cáo đánh giá là kết quả của việc đối thoại sớm, lắng nghe công nhân ngay từ tổ sản \
xuất. Cán bộ công đoàn chuyên trách được tăng cường thêm 4 người để theo dõi các doanh nghiệp có \
trên 1.000 lao động. Hòm thư góp ý điện tử của công đoàn nhận được 1.870 ý kiến, phần lớn về giờ \
tăng ca và chất lượng xe đưa đón. Ban Chấp hành công đoàn khu đã trả lời công khai từng nhóm ý \
kiến trên bảng tin tại nhà ăn của các doanh nghiệp. Câu lạc bộ "Công nhân & pháp luật" tổ chức \
14 buổi tư vấn miễn phí về hợp đồng lao động và bảo hiểm xã hội.

Chăm lo đời sống công nhân là điểm sáng của năm, chương trình "Tết sum vầy" đã trao 5.400 suất \
quà và 300 vé xe miễn phí cho công nhân về quê đón Tết. Chương trình "Mái ấm công đoàn" hỗ trợ \
sửa chữa 18 căn nhà cho đoàn viên khó khăn, mỗi căn từ 30 đến 50 triệu đồng. Khu nhà ở xã hội \
Tràng Duệ giai đoạn 2 hoàn thành 1.200 căn hộ, ưu tiên công nhân có thâm niên >3 năm và gia đình \
có con nhỏ. Nhà trẻ công nhân "Hoa Sen" mở thêm 6 lớp, nhận 180 cháu từ 6 tháng tuổi với giờ đón \
trả linh hoạt theo ca làm việc. Phòng khám công đoàn khám sức khỏe định kỳ cho 9.800 lượt công \
nhân, phát hiện sớm 312 trường hợp mắc bệnh nghề nghiệp liên quan đến tiếng ồn & dung môi. Siêu \
thị công đoàn tại cổng số 2 bán hàng thiết yếu với giá thấp hơn thị trường từ 5% đến 15% cho \
đoàn viên có thẻ. Nhiều doanh nghiệp còn tổ chức bữa ăn ca có giá trị từ 25.000 đồng trở lên, \
cao hơn mức tối thiểu mà thỏa ước quy định. Tuyến xe buýt công nhân số 36 được mở mới, nối khu \
nhà ở xã hội với cổng khu công nghiệp, chạy 40 chuyến mỗi ngày theo giờ đổi ca. Quỹ "Vì nữ công \
nhân" cho 95 chị vay vốn không lãi để mua xe máy và đóng học phí cho con. Giải bóng đá mini "Cúp \
Tràng Duệ" quy tụ 32 đội bóng, còn hội diễn văn nghệ công nhân lần thứ 5 có 26 tiết mục dự thi.

Về phương hướng năm 2026, hội nghị đặt mục tiêu đào tạo 4.000 lượt công nhân, nâng tỷ lệ lao \
động có tay nghề bậc 3 trở lên lên 45% và phát triển thêm 2.500 đoàn viên. Ban Quản lý sẽ phối \
hợp với Trường Cao đẳng Công nghiệp Hải Phòng mở lớp kỹ thuật viên bảo trì hệ 18 tháng, học viên \
vừa học vừa hưởng lương. Công đoàn các khu công nghiệp sẽ thương lượng để nâng số thỏa ước có \
điều khoản có lợi hơn luật lên ít nhất 30 bản, ưu tiên điều khoản về nhà ở & gửi trẻ. Khu nhà ở \
xã hội giai đoạn 3 với 1.500 căn hộ sẽ được khởi công trong quý II, dành tối thiểu 60% cho công \
nhân khu công nghiệp Tràng Duệ. Hội nghị cũng yêu cầu các doanh nghiệp công khai định mức lao \
động, không tăng ca quá 300 giờ mỗi năm và bảo đảm ngày nghỉ hằng tuần cho công nhân. Phát biểu \
kết luận, Trưởng Ban Quản lý nhấn mạnh đào tạo nghề và chăm lo công nhân là hai việc "phải đi \
cùng nhau" để giữ chân người lao động. Các đơn vị được giao báo cáo tiến độ thực hiện trước ngày \
30/6/2026 để kịp sơ kết sáu tháng. Trung tâm đào tạo kỹ năng sẽ số hóa giáo trình để công nhân \
học trên điện thoại trong giờ nghỉ giữa ca. Thư viện công nhân sẽ mở thêm một phòng đọc tại khu \
nhà ở xã hội, phục vụ đến 22 giờ hằng ngày. Giải bóng đá sẽ được mở rộng thành giải liên khu \
công nghiệp với các đội từ An Dương và Nam Đình Vũ.
"""

LONG_QUESTION = "Trung tâm đào tạo kỹ năng Tràng Duệ đã mở bao nhiêu lớp ngắn hạn?"
LONG_PASSAGES = PassageConfig(max_chars=2000)


@pytest.fixture(scope="module")
def long_report_service(
    tmp_path_factory: pytest.TempPathFactory, embedder: BundledEmbedder
) -> Iterator[QAService]:
    """A QAService over an index of LONG_REPORT alone, built once for this module."""
    root = tmp_path_factory.mktemp("long-report")
    docs, index_dir = root / "docs", root / "index"
    docs.mkdir()
    (docs / "2025-03-20-trang-due-dao-tao-cong-doan.txt").write_text(LONG_REPORT, encoding="utf-8")
    build_index(docs, index_dir, embedder, LONG_PASSAGES)
    qa = QAService(index_dir, embedder, docs_dir=docs)
    yield qa
    qa.close()


def test_overlong_reply_is_split_with_the_keyboard_on_the_last_part(
    start_bot: Callable[..., Bot], api: FakeBotAPI, long_report_service: QAService
) -> None:
    answer = long_report_service.ask(LONG_QUESTION, 3)
    assert answer.found and len(answer.passages) == 3
    assert all(len(p.text) > 1200 for p in answer.passages)  # whole paragraphs
    whole = fmt.format_answer(answer, answer.passages)
    assert fmt.text_length(whole) > fmt.MAX_MESSAGE_CHARS  # the reply the bot must split
    assert "&amp;" in whole and ("&lt;" in whole or "&gt;" in whole)

    bot = start_bot(long_report_service)
    bot.message(LONG_QUESTION)
    bot.replies(2)
    time.sleep(0.3)
    parts = api.calls_of("sendMessage", USER_ID)
    assert len(parts) == len(fmt.split_message(whole)) >= 2
    assert all(fmt.text_length(p.text) <= fmt.MAX_MESSAGE_CHARS for p in parts)
    assert all(balanced(p.text) for p in parts)
    for part in parts:  # the only markup is the bot's own; report text arrives escaped
        assert {name for _, name in TAG.findall(part.text)} <= {"b", "i", "blockquote"}
        assert "<" not in TAG.sub("", part.text) and ">" not in TAG.sub("", part.text)
    assert visible(" ".join(p.text for p in parts)) == visible(whole)  # nothing lost
    assert parts[0].text.startswith("💡 <b>Trả lời:</b> ")
    assert sum(p.text.count("<blockquote") for p in parts) >= 3
    assert "&amp;" in "".join(p.text for p in parts)
    assert not any(p.buttons for p in parts[:-1])
    assert [b["text"] for b in parts[-1].buttons] == [
        "📄 Nguồn [1]",
        "📄 Nguồn [2]",
        "📄 Nguồn [3]",
        "Xem thêm ➕",
    ]
    assert button(parts[-1], "Xem thêm").startswith("more:")


def test_errors_are_logged_apologised_for_and_the_bot_keeps_running(
    start_bot: Callable[..., Bot],
    writable_service: QAService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = start_bot(writable_service)
    bot.message(QUESTION)
    answer = bot.replies(1)[0]
    assert "Ban Tổ chức" in answer.text
    # the paragraphs behind the source buttons are read from the live segment's database
    (writable_service.index.segments[0].folder / "meta.sqlite").unlink()
    with caplog.at_level(logging.ERROR, logger="qabot.telegram.handlers"):
        update_id = bot.press(answer, button(answer, "📄 Nguồn [1]"))
        apology = bot.replies(2)[1]
    assert apology.text == fmt.APOLOGY
    assert fmt.APOLOGY.startswith("Xin lỗi, đã có lỗi xảy ra")
    assert not apology.buttons
    failed = [r for r in caplog.records if r.getMessage().startswith("error while handling update")]
    assert len(failed) == 1
    assert failed[0].getMessage() == f"error while handling update {update_id}"
    assert failed[0].exc_info and isinstance(failed[0].exc_info[1], sqlite3.Error)

    bot.message("/baocao")  # the report list is held in memory: still served
    listing = bot.replies(3)[2].text
    for document in writable_service.documents():
        assert html.escape(document.title, quote=False) in listing
    bot.message(QUESTION)  # and questions are still answered
    assert "Ban Tổ chức" in bot.replies(4)[3].text


def test_token_never_appears_in_logs(
    start_bot: Callable[..., Bot], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = start_bot()
    bot.message(QUESTION)
    bot.replies(1)
    bot.stop()
    assert len(caplog.records) > 20  # PTB and httpx did log
    assert any("[REDACTED]" in r.getMessage() for r in caplog.records)  # e.g. the API URL
    assert TOKEN not in caplog.text
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert logging.getLogger("httpx").level == logging.WARNING


# --- admin ----------------------------------------------------------------------------------

NEW_REPORT = """Đảng ủy Khu công nghiệp Thử Nghiệm tổng kết công tác năm 2025

Ngày 15/12/2025, Đảng ủy Khu công nghiệp Thử Nghiệm tổ chức hội nghị tổng kết công tác năm.

Trong năm, Đảng ủy đã kết nạp 37 đảng viên mới, thành lập 4 chi bộ tại các doanh nghiệp \
có vốn đầu tư nước ngoài và tổ chức 12 lớp bồi dưỡng lý luận chính trị cho đảng viên.
"""


def document(file_id: str, name: str, size: int) -> dict:
    return {
        "file_id": file_id,
        "file_unique_id": f"u{file_id}",
        "file_name": name,
        "mime_type": "text/plain",
        "file_size": size,
    }


def test_admin_adds_a_document_and_others_are_refused(
    start_bot: Callable[..., Bot], api: FakeBotAPI, writable_service: QAService
) -> None:
    bot = start_bot(writable_service, telegram_admins=[ADMIN_ID])
    admin = {"id": ADMIN_ID, "is_bot": False, "first_name": "Quản trị"}
    data = NEW_REPORT.encode()
    api.files["F1"] = data
    name = "2025-12-15-thu-nghiem-tong-ket.txt"

    bot.message(None, document=document("F1", name, len(data)))  # not an admin
    refusal = bot.replies(1)[0]
    assert "chỉ quản trị viên" in refusal.text
    assert not api.calls_of("getFile")

    bot.message(None, chat_id=ADMIN_ID, user=admin, document=document("F1", name, len(data)))
    progress = bot.replies(1, ADMIN_ID)[0]
    assert "Đang thêm tệp" in progress.text
    result = api.wait_for("editMessageText", timeout=60)[0]
    assert api.calls_of("getFile") and api.calls_of("download")
    added = next(d for d in writable_service.documents() if d.doc_id == name)
    assert "Đã thêm tài liệu" in result.text
    assert f"Tiêu đề: {added.title}" in result.text
    assert f"Ngày: {fmt.format_date(added.date)}" in result.text
    assert f"Số đoạn trích: {added.passages}" in result.text

    bot.message("Đảng ủy Khu công nghiệp Thử Nghiệm kết nạp bao nhiêu đảng viên mới?")
    assert "37 đảng viên" in bot.replies(2)[1].text

    api.files["F2"] = b"x"
    bot.message(None, chat_id=ADMIN_ID, user=admin, document=document("F2", "a.exe", 1))
    assert "Không hỗ trợ loại tệp .exe" in bot.replies(2, ADMIN_ID)[1].text


def test_reindex_is_for_admins_only(
    start_bot: Callable[..., Bot], api: FakeBotAPI, writable_service: QAService
) -> None:
    bot = start_bot(writable_service, telegram_admins=[ADMIN_ID])
    bot.message("/reindex")
    assert "chỉ quản trị viên" in bot.replies(1)[0].text
    admin = {"id": ADMIN_ID, "is_bot": False, "first_name": "Quản trị"}
    bot.message("/reindex", chat_id=ADMIN_ID, user=admin)
    assert "Đang cập nhật chỉ mục" in bot.replies(1, ADMIN_ID)[0].text
    result = api.wait_for("editMessageText", timeout=60)[0]
    count = len(writable_service.documents())
    assert f"Đã cập nhật chỉ mục.</b>\n{count} báo cáo" in result.text
    admin_menus = [c for c in api.calls_of("setMyCommands") if c.params.get("scope")]
    assert admin_menus[0].params["scope"] == {"type": "chat", "chat_id": ADMIN_ID}
    assert "reindex" in [c["command"] for c in admin_menus[0].params["commands"]]


# --- webhook --------------------------------------------------------------------------------

WEBHOOK_SECRET = "s3cret-Path-0123456789"  # at least 16 characters: qabot refuses weaker ones


def test_webhook_checks_the_secret_and_feeds_updates(api: FakeBotAPI, service: QAService) -> None:
    from fastapi.testclient import TestClient

    from qabot.http import create_app
    from qabot.telegram import attach_webhook
    from qabot.telegram.webhook import SECRET_HEADER

    settings = make_settings(
        api, telegram_webhook_url="https://bot.example.vn", telegram_webhook_secret=WEBHOOK_SECRET
    )
    app = create_app(service, settings)  # the HTTP API's own app carries the webhook
    assert attach_webhook(app, service, settings)
    update = message_update(77)
    with TestClient(app) as client:
        hook = api.calls_of("setWebhook")[0].params
        assert hook["url"] == f"https://bot.example.vn/telegram/{WEBHOOK_SECRET}"
        assert hook["secret_token"] == WEBHOOK_SECRET
        good = {SECRET_HEADER: WEBHOOK_SECRET}
        assert client.post("/telegram/wrong", json=update, headers=good).status_code == 404
        bad = {SECRET_HEADER: "nope"}
        hook_path = f"/telegram/{WEBHOOK_SECRET}"
        assert client.post(hook_path, json=update, headers=bad).status_code == 403
        assert client.post(hook_path, json=update).status_code == 403
        assert client.post(hook_path, content=b"[", headers=good).status_code == 400
        assert client.post(hook_path, json=update, headers=good).status_code == 200
        assert client.post("/ask", json={"question": NO_ANSWER_QUESTION}).status_code == 200
        reply = api.wait_for("sendMessage", chat_id=USER_ID)[0]
    assert reply.text.startswith("Không tìm thấy")
    assert len(api.calls_of("sendMessage")) == 1


# --- running: run_bot and bot.py -------------------------------------------------------------


def index_watchers() -> set[threading.Thread]:
    """The threads QAService.watch started that are still running."""
    return {t for t in threading.enumerate() if t.name == "qabot-index-watch" and t.is_alive()}


def test_run_bot_refuses_to_start_without_token_or_index(
    api: FakeBotAPI,
    capsys: pytest.CaptureFixture[str],
    service: QAService,
    embedder: BundledEmbedder,
    tmp_path: Path,
) -> None:
    watchers = index_watchers()
    assert run_bot(service, make_settings(api, telegram_token=None, reload_seconds=5)) == 1
    assert "QABOT_TELEGRAM_TOKEN" in capsys.readouterr().err

    empty = QAService(tmp_path, embedder)  # an empty folder: no index to load
    assert empty.index is None
    assert run_bot(empty, make_settings(api, reload_seconds=5)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Lỗi: chưa có chỉ mục") and err.count("\n") == 1
    assert str(tmp_path) in err
    assert not api.calls  # refused before talking to Telegram
    assert index_watchers() == watchers  # and before watching for index versions


def test_run_bot_reports_a_rejected_token(
    api: FakeBotAPI,
    capsys: pytest.CaptureFixture[str],
    reports_index: Path,
    embedder: BundledEmbedder,
) -> None:
    qa = QAService(reports_index, embedder)  # its own: run_bot closes the service it runs
    watchers = index_watchers()
    try:
        result = run_bot(qa, make_settings(api, telegram_token="999:WRONG", reload_seconds=5))
    finally:
        asyncio.set_event_loop(None)  # run_polling closed the loop it made current
    assert result == 1
    assert "không chấp nhận QABOT_TELEGRAM_TOKEN" in capsys.readouterr().err
    assert index_watchers() == watchers  # the service was closed: its watcher stopped
    assert gc.get_freeze_count() > 0  # what was loaded before polling is left to live
    assert gc.get_threshold()[0] == YOUNG_GC_OBJECTS  # and questions' objects collected less often


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "QABOT_TELEGRAM_TOKEN"),
        ({"QABOT_TELEGRAM_TOKEN": TOKEN, "QABOT_INDEX_DIR": "no-index-here"}, "chưa có chỉ mục"),
    ],
)
def test_bot_py_fails_with_one_line(tmp_path: Path, env: dict, expected: str) -> None:
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("QABOT_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bot.py")],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Lỗi:")]
    assert len(lines) == 1 and expected in lines[0]
    assert TOKEN not in result.stderr


def message_update(update_id: int, text: str = NO_ANSWER_QUESTION) -> dict:
    """A Bot API update: the test user's private message."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": USER_ID, "type": "private"},
            "from": {"id": USER_ID, "is_bot": False, "first_name": "Lan"},
            "text": text,
        },
    }
