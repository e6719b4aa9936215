"""The question log against real SQLite files: what is stored (and what never is), retention,
feedback through the API and the bot, the report, /metrics, and a log that cannot be
written."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from qabot.index.layout import writer_lock
from qabot.questionlog import (
    LoggedAnswer,
    QuestionLog,
    default_log_path,
    group_questions,
    open_log,
    parse_period,
)
from qabot.service import QAService

from .test_api import OFF_TOPIC, ON_TOPIC, TOKEN, assert_error, make_settings, running
from .test_cli import qabot
from .test_telegram import (  # noqa: F401  (start_bot is a fixture)
    ADMIN_ID,
    QUESTION,
    USER_ID,
    Bot,
    FakeBotAPI,
    button,
    start_bot,
)
from .test_telegram import (
    TOKEN as BOT_TOKEN,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEATHER = [  # one unanswered question, worded four ways
    OFF_TOPIC,
    "thoi tiet ha noi ngay mai the nao",
    "Thời tiết ở Hà Nội ngày mai?",
    "Thời tiết Hà Nội ngày mai thế nào ?",
]
OTHER_UNANSWERED = "Giá vàng hôm nay bao nhiêu một lượng?"


def rows(path: Path) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM questions ORDER BY at")]
    finally:
        conn.close()


def metrics(client: httpx.Client) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def entry(answer_id: str, at: float, question: str = "Câu hỏi?", found: bool = True):
    return LoggedAnswer(answer_id, at, "api", question, question, found, 0.9, 10.0, (("a", 1),))


class BotAPI(FakeBotAPI):
    """The stand-in, returning messages as Telegram does: a message keeps only an inline
    keyboard as its reply_markup (a ForceReply is not returned)."""

    def message_result(self, params: dict, message_id: int | None = None) -> dict:
        message = super().message_result(params, message_id)
        if "inline_keyboard" not in (message.get("reply_markup") or {}):
            message.pop("reply_markup", None)
        return message


@pytest.fixture
def api() -> Iterator[BotAPI]:
    server = BotAPI(BOT_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "questions.sqlite"


@pytest.fixture
def logged_service(reports_index, embedder, log_path) -> Iterator[QAService]:
    """The shared index (read-only) with its own question log."""
    service = QAService(reports_index, embedder, question_log=QuestionLog(log_path))
    yield service
    service.close()


# --- pure parts ------------------------------------------------------------------------------


def test_periods_and_the_default_path() -> None:
    assert parse_period("30d") == timedelta(days=30)
    assert parse_period("12h") == timedelta(hours=12)
    assert parse_period("2W") == timedelta(weeks=2)
    assert parse_period("7") == timedelta(days=7)
    for bad in ("", "0d", "-3d", "abc", "3m"):
        with pytest.raises(ValueError):
            parse_period(bad)
    assert default_log_path(Path("/srv/embeddings")) == Path("/srv/embeddings-questions.sqlite")
    assert open_log("off", Path("/srv/embeddings"), 180) is None
    assert open_log("OFF", Path("/srv/embeddings"), 180) is None


def test_near_identical_questions_are_one_group() -> None:
    asked = [(q, False) for q in WEATHER] + [
        ("Ai là bí thư?", True),
        ("Ai là chủ tịch?", False),
        (OFF_TOPIC, False),
    ]
    groups = group_questions(asked)
    assert [(g.example, g.count) for g in groups] == [
        (OFF_TOPIC, 5),  # the most frequent wording is the example
        ("Ai là bí thư?", 1),
        ("Ai là chủ tịch?", 1),
    ]
    assert groups[0].found == 0 and len(groups[0].wordings) == 4


# --- the file ----------------------------------------------------------------------------------


def test_retention_deletes_old_rows_on_start_and_daily(log_path: Path) -> None:
    now = [time.time()]
    day = 86400
    question_log = QuestionLog(log_path, retention_days=30, clock=lambda: now[0])
    for n, age_days in enumerate([200, 31, 29, 1]):
        question_log.record(entry(f"a{n}", now[0] - age_days * day))
    assert question_log.flush()
    question_log.close()
    assert len(rows(log_path)) == 4  # written as given; the purge ran before them

    question_log = QuestionLog(log_path, retention_days=30, clock=lambda: now[0])
    assert question_log.flush()
    assert [r["answer_id"] for r in rows(log_path)] == ["a2", "a3"]  # on start

    now[0] += 2 * day  # two days later a29 is 31 days old: the daily purge takes it
    question_log.record(entry("a4", now[0]))
    assert question_log.flush()
    assert [r["answer_id"] for r in rows(log_path)] == ["a3", "a4"]
    question_log.close()
    conn = sqlite3.connect(log_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_full_queue_drops_entries_without_blocking(log_path: Path, caplog) -> None:
    question_log = QuestionLog(log_path, queue_size=1)
    # Hold the writer on a locked file so the queue fills up.
    log_path.parent.mkdir(parents=True, exist_ok=True)
    assert question_log.flush()
    blocker = sqlite3.connect(log_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="qabot.questionlog"):
            started = time.perf_counter()
            for n in range(50):
                question_log.record(entry(f"q{n}", time.time()))
            elapsed = time.perf_counter() - started
        assert question_log.dropped >= 40
        assert elapsed < 1.0  # 50 records while the writer is stuck: none waited on it
        assert "queue full" in caplog.text
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    question_log.close()


# --- through the API ---------------------------------------------------------------------------


def test_api_questions_are_logged_with_feedback_stats_and_metrics(
    logged_service: QAService, log_path: Path
) -> None:
    settings = make_settings(admin_token=TOKEN)
    with running(logged_service, settings) as client:
        found = client.post("/ask", json={"question": ON_TOPIC, "top_k": 3}).json()
        not_found = client.get("/ask", params={"q": OFF_TOPIC}).json()
        assert found["found"] and not not_found["found"]
        assert found["answer_id"] and not_found["answer_id"]
        assert found["answer_id"] != not_found["answer_id"]
        assert client.post("/ask", json={"question": "  "}).status_code == 422

        stored = client.post(
            "/feedback",
            json={"answer_id": found["answer_id"], "helpful": False, "comment": "Thiếu ý"},
        )
        assert stored.status_code == 200 and stored.json() == {"stored": True}
        assert (
            client.post("/feedback", json={"answer_id": not_found["answer_id"], "helpful": True})
        ).status_code == 200
        unknown = client.post("/feedback", json={"answer_id": "nope", "helpful": True})
        assert_error(unknown, 404, "unknown_answer")
        bad = client.post("/feedback", json={"answer_id": found["answer_id"], "helpful": "no"})
        assert bad.status_code == 422

        assert_error(client.get("/admin/stats"), 401, "missing_token")
        assert_error(client.get("/admin/stats", headers={"Authorization": "Bearer x"}), 401,
                     "invalid_token")  # fmt: skip
        assert_error(client.get("/admin/stats?since=soon", headers=AUTH), 422, "invalid_period")
        stats = client.get("/admin/stats", params={"since": "1d"}, headers=AUTH)
        assert stats.status_code == 200
        report = stats.json()

        samples = metrics(client)

    logged = {r["answer_id"]: r for r in rows(log_path)}
    assert set(logged) == {found["answer_id"], not_found["answer_id"]}
    row = logged[found["answer_id"]]
    assert row["channel"] == "api" and row["question"] == ON_TOPIC
    assert row["interpreted_question"] == found["interpreted_question"]
    assert row["found"] == 1 and 0.0 < row["confidence"] <= 1.0
    assert row["took_ms"] == found["took_ms"]
    cited = [[p["doc_id"], p["paragraph"]] for p in found["passages"]]
    assert json.loads(row["citations"]) == cited
    assert row["user_hash"] is None  # the API has no user
    assert (row["helpful"], row["comment"]) == (0, "Thiếu ý")
    assert logged[not_found["answer_id"]]["found"] == 0
    assert logged[not_found["answer_id"]]["helpful"] == 1

    assert report["questions"] == 2 and report["found_rate"] == 0.5
    assert report["feedback"] == {"helpful": 1, "wrong": 1}
    assert report["per_day"][0]["channels"] == {"api": 2}
    assert report["unanswered"] == [{"question": OFF_TOPIC, "count": 1, "wordings": 1}]
    [wrong] = report["wrong_answers"]
    assert wrong["question"] == ON_TOPIC and wrong["comment"] == "Thiếu ý"
    assert [[c["doc_id"], c["paragraph"]] for c in wrong["citations"]] == cited
    documents = logged_service.documents()
    assert {c["doc_id"] for c in report["least_cited"]} <= {d.doc_id for d in documents}
    assert report["most_cited"][0]["answers"] == 1
    assert report["least_cited"][0]["answers"] == 0  # some report nobody cited

    def sample(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert sample("qabot_http_requests_total", method="POST", route="/ask", status="200") == 1
    assert sample("qabot_http_requests_total", method="GET", route="/ask", status="200") == 1
    assert sample("qabot_http_requests_total", method="POST", route="/ask", status="422") == 1
    assert sample("qabot_http_requests_total", method="POST", route="/feedback", status="404") == 1
    assert (
        sample("qabot_http_requests_total", method="GET", route="/admin/stats", status="401") == 2
    )
    assert sample("qabot_ask_request_seconds_count") == 3
    assert sample("qabot_ask_request_seconds_bucket", le="+Inf") == 3
    assert sample("qabot_answers_total", channel="api", found="true") == 1
    assert sample("qabot_answers_total", channel="api", found="false") == 1
    status = logged_service.status()
    assert sample("qabot_index_info", version=status["version"]) == 1
    assert sample("qabot_index_passages") == status["passages"] > 0
    assert sample("qabot_question_log_entries_total", outcome="written") == 2
    assert not any("soon" in str(key) or "nope" in str(key) for key in samples)


def test_metrics_count_rebuilds_and_apps_do_not_collide(writable_service: QAService) -> None:
    settings = make_settings(admin_token=TOKEN)
    with running(writable_service, settings) as first, running(writable_service, settings) as other:
        assert first.post("/reindex", headers=AUTH).status_code == 200
        with writer_lock(writable_service.index_dir):  # another writer: this rebuild fails
            busy = first.post("/reindex", params={"wait": 0}, headers=AUTH)
        assert_error(busy, 409, "index_busy")
        samples = metrics(first)
        assert samples[("qabot_index_rebuild_seconds_count", ())] == 1
        assert samples[("qabot_index_rebuild_seconds_sum", ())] > 0
        assert samples[("qabot_index_rebuild_failures_total", ())] == 1
        requests = ("qabot_http_requests_total",)
        other_samples = metrics(other)  # its own registry: no requests of the first app
        assert not [k for k in other_samples if k[0] in requests and "/reindex" in str(k)]


def test_a_log_that_cannot_be_written_does_not_break_ask(
    reports_index, embedder, tmp_path: Path, caplog
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    for path in (not_a_folder / "questions.sqlite", broken):
        service = QAService(reports_index, embedder, question_log=QuestionLog(path))
        try:
            with (
                caplog.at_level(logging.ERROR, logger="qabot.questionlog"),
                running(service, make_settings()) as client,
            ):
                for _ in range(3):
                    response = client.post("/ask", json={"question": ON_TOPIC})
                    assert response.status_code == 200
                    assert response.json()["found"] is True
                assert service.question_log.flush()
                feedback = client.post(
                    "/feedback",
                    json={"answer_id": response.json()["answer_id"], "helpful": True},
                )
                assert_error(feedback, 503, "log_unavailable")
                stats = client.get("/metrics").text
            assert service.question_log.failed == 3 and service.question_log.written == 0
            assert 'qabot_question_log_entries_total{outcome="failed"} 3.0' in stats
            # one error line for the failing streak, not one per question
            assert caplog.text.count("answers go out unlogged") == 1, caplog.text
            caplog.clear()
        finally:
            service.close()
    assert broken.read_bytes() == b"this is not a database" * 100  # nothing overwritten


def test_report_groups_near_identical_unanswered_questions(logged_service: QAService) -> None:
    for question in [*WEATHER, OTHER_UNANSWERED, ON_TOPIC]:
        logged_service.ask(question, channel="web")
    logged_service.ask(ON_TOPIC, channel=None)  # the program's own question: not logged
    report = logged_service.report(timedelta(days=1))
    assert report["questions"] == 6
    assert report["unanswered"] == [
        {"question": OFF_TOPIC, "count": 4, "wordings": 4},
        {"question": OTHER_UNANSWERED, "count": 1, "wordings": 1},
    ]
    assert report["most_asked"][0] == {"question": OFF_TOPIC, "count": 4, "found": 0}
    assert report["per_day"][-1]["channels"] == {"web": 6}
    assert report["latency_ms"]["median"] > 0
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["median"]


# --- through the bot ---------------------------------------------------------------------------


def test_bot_questions_are_logged_without_raw_ids_and_take_feedback(
    start_bot: Callable[..., Bot],  # noqa: F811
    api: BotAPI,
    logged_service: QAService,
    log_path: Path,
) -> None:
    bot = start_bot(logged_service, telegram_admins=[ADMIN_ID])
    bot.message(QUESTION)
    reply = bot.replies()[0]
    assert [b["text"] for b in reply.buttons][-2:] == ["👍 Hữu ích", "👎 Chưa đúng"]
    assert logged_service.question_log.flush()
    [row] = rows(log_path)
    assert row["channel"] == "telegram" and row["question"] == QUESTION and row["found"] == 1
    assert re.fullmatch(r"[0-9a-f]{24}", row["user_hash"])
    unsalted = hashlib.sha256(f"user:{USER_ID}".encode()).hexdigest()[:24]
    assert row["user_hash"] != unsalted
    for value in row.values():  # the raw id is in no column, nor the token
        assert str(value) != str(USER_ID) and f":{USER_ID}" not in str(value)
        assert api.token not in str(value)

    bot.press(reply, button(reply, "👎"))
    prompt = bot.replies(2)[1]
    assert "sai ở điểm nào" in prompt.text
    assert prompt.params["reply_markup"]["force_reply"] is True
    assert prompt.params["reply_parameters"]["message_id"] == reply.message_id
    assert logged_service.question_log.flush()
    assert rows(log_path)[0]["helpful"] == 0

    replied = api.message_result(prompt.params, message_id=prompt.message_id)
    bot.message("Số cơ quan tham mưu chưa đủ", reply_to=replied)
    thanks = bot.replies(3)[2]
    assert "góp ý đã được ghi nhận" in thanks.text
    assert logged_service.question_log.flush()
    assert (rows(log_path)[0]["helpful"], rows(log_path)[0]["comment"]) == (
        0,
        "Số cơ quan tham mưu chưa đủ",
    )
    assert len(rows(log_path)) == 1  # the comment was not taken for a question

    bot.press(reply, button(reply, "👎"))  # asked once: no second prompt
    bot.press(reply, button(reply, "Xem thêm"))  # the bot asking again is not logged
    assert "Các đoạn trích tiếp theo" in bot.replies(4)[3].text
    assert len(api.calls_of("answerCallbackQuery")) >= 3
    assert logged_service.question_log.flush()
    assert len(rows(log_path)) == 1

    # Other users (another id, same bot) get another hash.
    bot.message(OFF_TOPIC, user={"id": 222, "is_bot": False, "first_name": "Minh"})
    bot.replies(5)
    assert logged_service.question_log.flush()
    hashes = {r["user_hash"] for r in rows(log_path)}
    assert len(hashes) == 2 and not any("222" in h for h in hashes)

    bot.message("/thongke")
    refused = bot.replies(6)[5]
    assert "Chỉ quản trị viên" in refused.text
    admin = {"id": ADMIN_ID, "is_bot": False, "first_name": "Hà"}
    bot.message("/thongke 7d", chat_id=ADMIN_ID, user=admin)
    stats = bot.replies(1, chat_id=ADMIN_ID)[0]
    assert "Thống kê 7 ngày qua" in stats.text
    assert "2 câu hỏi (Telegram 2)" in stats.text and "0 👍, 1 👎" in stats.text
    assert "Thời tiết Hà Nội ngày mai thế nào?" in stats.text


# --- the command -------------------------------------------------------------------------------


def test_cli_ask_logs_only_with_the_flag_and_report_prints(reports_index, tmp_path: Path):
    log_db = tmp_path / "cli.sqlite"
    env = {"QABOT_INDEX_DIR": str(reports_index), "QABOT_LOG_DB": str(log_db)}
    plain = qabot("ask", ON_TOPIC, "--json", env=env)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["answer_id"] is None and not log_db.exists()
    logged = qabot("ask", OFF_TOPIC, "--log", "--json", env=env)
    assert logged.returncode == 0, logged.stderr
    answer_id = json.loads(logged.stdout)["answer_id"]
    assert [(r["answer_id"], r["channel"], r["found"]) for r in rows(log_db)] == [
        (answer_id, "cli", 0)
    ]
    report = qabot("report", "--since", "2d", "--json", env=env)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["questions"] == 1 and data["unanswered"][0]["question"] == OFF_TOPIC
    text = qabot("report", env=env)
    assert text.returncode == 0 and "Câu hỏi chưa có câu trả lời" in text.stdout
    assert OFF_TOPIC in text.stdout
    bad = qabot("report", "--since", "soon", env=env)
    assert bad.returncode == 1 and bad.stderr.startswith("Lỗi:") and "Traceback" not in bad.stderr
    off = qabot("report", env={**env, "QABOT_LOG_DB": "off"})
    assert off.returncode == 1 and "QABOT_LOG_DB=off" in off.stderr
