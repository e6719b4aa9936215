"""The Telegram bot: pure formatting and splitting, then end to end with the real
python-telegram-bot Application polling a stand-in Bot API server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
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
from qabot.config import Settings
from qabot.index.meta import DocumentInfo, ParagraphRecord
from qabot.service import ParagraphContext, QAService
from qabot.telegram import build_application, keyboards, run_bot
from qabot.telegram import formatting as fmt
from qabot.telegram.app import COMMANDS, file_base_url
from qabot.telegram.examples import choose_examples, title_question
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
    text = fmt.format_documents(docs)
    assert "3 báo cáo" in text
    assert text.index("Mới (06/05/2024)") < text.index("Cũ (02/01/2018)") < text.index("Không")


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

    def press(self, sent: Call, data: str, user: dict | None = None) -> None:
        """Press a button of a message the bot sent."""
        assert data in [b["callback_data"] for b in sent.buttons], (data, sent.buttons)
        message = self.api.message_result(sent.params, message_id=sent.message_id)
        self.api.push(
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
    bolds = re.findall(r"<blockquote>[^<]*<b>([^<]+)</b>", text)
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


def test_question_without_answer_says_so_and_shows_nothing_else(bot: Bot) -> None:
    bot.message(NO_ANSWER_QUESTION)
    reply = bot.replies()[0]
    assert reply.text.startswith("Không tìm thấy thông tin này trong các báo cáo hiện có.")
    assert "diễn đạt lại" in reply.text
    assert "Nguồn" not in reply.text and "<blockquote>" not in reply.text
    assert not reply.buttons


def test_sources_and_baocao_list_the_reports(bot: Bot, service: QAService) -> None:
    bot.message("/baocao")
    bot.message("/sources")
    replies = bot.replies(2)
    for reply in replies:
        for document in service.documents():
            line = f"{html.escape(document.title, quote=False)} ({fmt.format_date(document.date)})"
            assert line in reply.text


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
    shown = set(re.findall(r"<blockquote>(.*?)</blockquote>", first.text, re.S))
    for quote in re.findall(r"<blockquote>(.*?)</blockquote>", more.text, re.S):
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
    for record in context.paragraphs:
        assert html.escape(record.text.strip(), quote=False) in shown.text
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


class StubService:
    """Stands in for QAService where a test needs answers the sample reports cannot give."""

    def __init__(self, ask: Callable[[str, int], Answer]) -> None:
        self._ask = ask
        self.index = object()
        self.index_dir = Path("stub-index")
        self.max_upload_bytes = 1024
        self.watched = False
        self.closed = False
        self.document = DocumentInfo("stub.txt", "Báo cáo thử", "2024-01-02", "stub.txt", "h", 9, 9)

    def ask(self, question: str, top_k: int = 5) -> Answer:
        return self._ask(question, top_k)

    def documents(self) -> list[DocumentInfo]:
        return [self.document]

    def status(self) -> dict:
        return {"status": "ok", "version": "v1"}

    def paragraph_context(self, doc_id: str, paragraph: int, radius: int = 1) -> ParagraphContext:
        record = ParagraphRecord(doc_id, paragraph, "body", "x")
        return ParagraphContext(self.document, paragraph, [record])

    def watch(self, interval: float) -> None:
        self.watched = True

    def close(self) -> None:
        self.closed = True


def long_answer(question: str, top_k: int = 5) -> Answer:
    sentence = "Đảng bộ đã lãnh đạo hoàn thành các chỉ tiêu <quan trọng> & vượt kế hoạch. "
    passages = tuple(
        CitedPassage(
            rank=r,
            text="\n\n".join(sentence * 8 for _ in range(4)),
            score=0.9,
            doc_id="stub.txt",
            title="Báo cáo thử",
            date="2024-01-02",
            source="stub.txt",
            paragraph=r,
            highlight=(0, 40) if r == 1 else None,
        )
        for r in range(1, min(top_k, 3) + 1)
    )
    return Answer(question, True, sentence.strip(), passages, 1.0)


def test_overlong_reply_is_split_with_the_keyboard_on_the_last_part(
    start_bot: Callable[..., Bot],
) -> None:
    bot = start_bot(StubService(long_answer))
    bot.message("Kết quả lãnh đạo thế nào?")
    time.sleep(0.3)
    parts = bot.replies(2)
    assert len(parts) >= 2
    assert all(len(p.text) <= 4096 for p in parts)
    assert all(balanced(p.text) for p in parts)
    assert not any(p.buttons for p in parts[:-1])
    assert button(parts[-1], "Xem thêm").startswith("more:")
    assert "&lt;quan trọng&gt; &amp;" in parts[0].text
    assert sum(p.text.count("<blockquote>") for p in parts) >= 3


def test_errors_are_logged_apologised_for_and_the_bot_keeps_running(
    start_bot: Callable[..., Bot], caplog: pytest.LogCaptureFixture
) -> None:
    def ask(question: str, top_k: int = 5) -> Answer:
        if question.startswith("Lỗi"):
            raise RuntimeError("search exploded")
        return long_answer(question, top_k)

    bot = start_bot(StubService(ask))
    with caplog.at_level(logging.ERROR, logger="qabot.telegram.handlers"):
        bot.message("Lỗi ở đâu?")
        apology = bot.replies(1)[0]
    assert apology.text.startswith("Xin lỗi, đã có lỗi xảy ra")
    failed = [r for r in caplog.records if r.getMessage().startswith("error while handling update")]
    assert failed and failed[0].exc_info and "search exploded" in str(failed[0].exc_info[1])
    assert re.search(r"update \d+", failed[0].getMessage())
    bot.message("/baocao")
    assert "Báo cáo thử" in bot.replies(2)[1].text


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


def test_webhook_checks_the_secret_and_feeds_updates(api: FakeBotAPI, service: QAService) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from qabot.telegram.webhook import SECRET_HEADER, mount_webhook, webhook_lifespan

    settings = make_settings(
        api, telegram_webhook_url="https://bot.example.vn", telegram_webhook_secret="s3cret-Path"
    )
    application = build_application(service, settings)
    app = FastAPI(lifespan=lambda _app: webhook_lifespan(application, settings))
    mount_webhook(app, application, settings)
    update = {
        "update_id": 77,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": USER_ID, "type": "private"},
            "from": {"id": USER_ID, "is_bot": False, "first_name": "Lan"},
            "text": NO_ANSWER_QUESTION,
        },
    }
    with TestClient(app) as client:
        hook = api.calls_of("setWebhook")[0].params
        assert hook["url"] == "https://bot.example.vn/telegram/s3cret-Path"
        assert hook["secret_token"] == "s3cret-Path"
        good = {SECRET_HEADER: "s3cret-Path"}
        assert client.post("/telegram/wrong", json=update, headers=good).status_code == 404
        bad = {SECRET_HEADER: "nope"}
        assert client.post("/telegram/s3cret-Path", json=update, headers=bad).status_code == 403
        assert client.post("/telegram/s3cret-Path", json=update).status_code == 403
        assert client.post("/telegram/s3cret-Path", content=b"[", headers=good).status_code == 400
        assert client.post("/telegram/s3cret-Path", json=update, headers=good).status_code == 200
        reply = api.wait_for("sendMessage", chat_id=USER_ID)[0]
    assert reply.text.startswith("Không tìm thấy")
    assert len(api.calls_of("sendMessage")) == 1


# --- running: run_bot and bot.py -------------------------------------------------------------


def test_run_bot_refuses_to_start_without_token_or_index(
    api: FakeBotAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = StubService(long_answer)
    assert run_bot(stub, make_settings(api, telegram_token=None)) == 1
    assert "QABOT_TELEGRAM_TOKEN" in capsys.readouterr().err
    stub.index = None
    assert run_bot(stub, make_settings(api)) == 1
    err = capsys.readouterr().err
    assert err.startswith("Lỗi: chưa có chỉ mục") and err.count("\n") == 1
    assert not stub.watched


def test_run_bot_reports_a_rejected_token(
    api: FakeBotAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = StubService(long_answer)
    try:
        result = run_bot(stub, make_settings(api, telegram_token="999:WRONG", reload_seconds=5))
    finally:
        asyncio.set_event_loop(None)  # run_polling closed the loop it made current
    assert result == 1
    assert "không chấp nhận QABOT_TELEGRAM_TOKEN" in capsys.readouterr().err
    assert stub.closed


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
