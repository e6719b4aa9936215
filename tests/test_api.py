"""The HTTP API against a real uvicorn server on 127.0.0.1 and the real QAService."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qabot.config import Settings
from qabot.http import create_app
from qabot.http.app import MAX_JSON_BODY_BYTES
from qabot.index import build_index
from qabot.index.layout import writer_lock
from qabot.messages import INTERNAL_ERROR
from qabot.service import QAService

from .servers import uvicorn_server

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"
HAI_PHONG = "2018-07-11-hai-phong-so-ket-6-thang-dau-nam.txt"
HAI_PHONG_PARAGRAPHS = 9
ON_TOPIC = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
OFF_TOPIC = "Thời tiết Hà Nội ngày mai thế nào?"
ANSWER_KEYS = {
    "question", "found", "answer", "passages", "took_ms", "interpreted_question", "answer_id",
}  # fmt: skip
PASSAGE_KEYS = {
    "rank", "text", "score", "doc_id", "title", "date", "source", "paragraph", "highlight",
}  # fmt: skip
HEALTH_KEYS = {
    "status", "version", "documents", "passages", "embedder", "uptime_seconds", "calibration",
}  # fmt: skip
DOCUMENT_KEYS = {"doc_id", "title", "date", "source", "passages", "paragraphs"}
ERROR_KEYS = {"detail", "code"}

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD = 2000

NEW_REPORT_NAME = "2025-05-20-trang-due-tap-huan-an-toan.txt"
NEW_REPORT = """Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động cho công nhân
08:30 - 20/05/2025

Ngày 20/5/2025, Ban Quản lý Khu công nghiệp Tràng Duệ phối hợp với Công đoàn Khu kinh tế \
tổ chức lớp tập huấn an toàn lao động cho 320 công nhân của 12 doanh nghiệp.

Trong hai ngày, các học viên được hướng dẫn kỹ năng phòng cháy, chữa cháy và sơ cứu người bị \
nạn tại nhà xưởng.

Kết thúc lớp tập huấn, Ban Quản lý trao giấy chứng nhận cho các học viên đạt yêu cầu và đề \
nghị các doanh nghiệp kiểm tra định kỳ thiết bị an toàn.
"""
NEW_REPORT_QUESTION = (
    "Lớp tập huấn an toàn lao động ở Khu công nghiệp Tràng Duệ có bao nhiêu công nhân tham gia?"
)


# --- helpers -------------------------------------------------------------------------------


def make_settings(**overrides: Any) -> Settings:
    """Explicit Settings: neither a developer's .env nor QABOT_* variables leak in."""
    values: dict[str, Any] = {
        "admin_token": None,
        "cors_origins": [],
        "max_upload_bytes": MAX_UPLOAD,
        "top_k": 5,
        "reload_seconds": 2.0,
        "log_level": "INFO",
        # One module's client asks hundreds of times a minute; the limit has its own tests.
        "rate_limit": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextmanager
def running(service: QAService, settings: Settings) -> Iterator[httpx.Client]:
    """A real uvicorn server on an ephemeral 127.0.0.1 port, and a client for it."""
    with serving(create_app(service, settings)) as client:
        yield client


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    with uvicorn_server(app) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert "Traceback" not in response.text
    return body


def without_timing(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("took_ms", "answer_id")}


def doc_ids(client: httpx.Client) -> list[str]:
    response = client.get("/documents")
    assert response.status_code == 200
    return [d["doc_id"] for d in response.json()]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(service: QAService) -> Iterator[httpx.Client]:
    """The shared read-only server; no admin token configured."""
    with running(service, make_settings()) as client:
        yield client


@pytest.fixture
def admin(writable_service: QAService) -> Iterator[httpx.Client]:
    """A server with admin endpoints on its own docs folder and index copy."""
    with running(writable_service, make_settings(admin_token=TOKEN)) as client:
        yield client


# --- /ask ----------------------------------------------------------------------------------


def test_post_ask_answers_with_citations(client: httpx.Client) -> None:
    response = client.post("/ask", json={"question": ON_TOPIC, "top_k": 5})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == ANSWER_KEYS
    assert answer["found"] is True
    assert answer["question"] == ON_TOPIC
    assert answer["answer"].strip()
    assert 1 <= len(answer["passages"]) <= 5
    assert [p["rank"] for p in answer["passages"]] == list(range(1, len(answer["passages"]) + 1))
    for passage in answer["passages"]:
        assert set(passage) == PASSAGE_KEYS
        assert passage["title"].strip() and passage["source"].strip() and passage["text"].strip()
        assert passage["date"] is None or len(passage["date"]) == 10
        assert isinstance(passage["paragraph"], int) and passage["paragraph"] >= 1
        if passage["highlight"] is not None:  # a JSON [start, end] span inside the text
            start, end = passage["highlight"]
            assert 0 <= start < end <= len(passage["text"])
    assert any(p["date"] for p in answer["passages"])


def test_get_ask_matches_post(client: httpx.Client) -> None:
    by_get = client.get("/ask", params={"q": ON_TOPIC, "top_k": 2})
    by_post = client.post("/ask", json={"question": ON_TOPIC, "top_k": 2})
    assert by_get.status_code == by_post.status_code == 200
    assert len(by_get.json()["passages"]) <= 2
    assert without_timing(by_get.json()) == without_timing(by_post.json())


def test_off_topic_question_is_not_found(client: httpx.Client) -> None:
    answer = client.post("/ask", json={"question": OFF_TOPIC}).json()
    assert answer["found"] is False
    assert answer["answer"] == ""


def test_control_characters_are_cleaned(client: httpx.Client) -> None:
    escaped = client.post(
        "/ask",
        content=b'{"question": "\\u0000\\u0007' + ON_TOPIC.encode() + b'\\u0000"}',
        headers={"Content-Type": "application/json"},
    )
    assert escaped.status_code == 200
    assert escaped.json()["question"] == ON_TOPIC
    query = client.get("/ask", params={"q": f"{ON_TOPIC}\x00\x1b"})
    assert query.status_code == 200
    assert query.json()["question"] == ON_TOPIC
    lone_surrogate = client.post(
        "/ask",
        content=b'{"question": "\\ud800' + ON_TOPIC.encode() + b'\\udfff"}',
        headers={"Content-Type": "application/json"},
    )
    assert lone_surrogate.status_code == 200
    assert lone_surrogate.json()["question"] == ON_TOPIC
    # Invalid UTF-8 in a query string is decoded with replacement characters, never a crash.
    broken = client.get("/ask?q=%FF%FE%00")
    assert broken.status_code in (200, 422)
    assert "\x00" not in broken.text


BAD_BODIES = [
    (b"", "invalid_body"),
    (b"[1, 2]", "invalid_body"),
    (b'"question"', "invalid_body"),
    (b"{}", "missing_field"),
    (b'{"top_k": 3}', "missing_field"),
    (b'{"question": ""}', "empty_question"),
    (b'{"question": "  \\t\\n  "}', "empty_question"),
    (b'{"question": "\\u0000\\u0001"}', "empty_question"),
    (b'{"question": null}', "invalid_type"),
    (b'{"question": 123}', "invalid_type"),
    (b'{"question": ["a"]}', "invalid_type"),
    (b'{"question": "x", "top_k": 0}', "out_of_range"),
    (b'{"question": "x", "top_k": 21}', "out_of_range"),
    (b'{"question": "x", "top_k": -3}', "out_of_range"),
    (b'{"question": "x", "top_k": "5"}', "invalid_type"),
    (b'{"question": "x", "top_k": 2.5}', "invalid_type"),
    (b'{"question": "x", "top_k": true}', "invalid_type"),
    (b'{"question": ', "invalid_json"),
    (b"{'question': 'x'}", "invalid_json"),
    (b'{"question": "\xff\xfe"}', "invalid_json"),
    (b'{"question": "a\x00b"}', "invalid_json"),
    (b'{"question": "x", "history": "y"}', "invalid_type"),
    (b'{"question": "x", "history": null}', "invalid_type"),
    (b'{"question": "x", "history": [1]}', "invalid_type"),
    (b'{"question": "x", "history": [""]}', "empty_question"),
    (b'{"question": "x", "history": ["' + b"a" * 1001 + b'"]}', "question_too_long"),
    (b'{"question": "x", "history": [' + b'"q", ' * 10 + b'"q"]}', "history_too_long"),
]


@pytest.mark.parametrize(("body", "code"), BAD_BODIES)
def test_bad_ask_bodies_are_422(client: httpx.Client, body: bytes, code: str) -> None:
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, code)


def test_bad_ask_messages_say_what_is_wrong(client: httpx.Client) -> None:
    missing = client.post("/ask", json={}).json()["detail"]
    assert "question" in missing
    out_of_range = client.post("/ask", json={"question": "x", "top_k": 99}).json()["detail"]
    assert "top_k" in out_of_range and "1" in out_of_range and "20" in out_of_range
    invalid = client.post("/ask", content=b"{", headers={"Content-Type": "application/json"})
    assert "JSON" in invalid.json()["detail"]


def test_question_over_limit_is_422(client: httpx.Client) -> None:
    body = assert_error(
        client.post("/ask", json={"question": "a" * 1001}), 422, "question_too_long"
    )
    assert "1000" in body["detail"]
    assert client.post("/ask", json={"question": "a" * 1000}).status_code == 200


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "missing_field"),
        ({"q": ""}, "empty_question"),
        ({"q": "   "}, "empty_question"),
        ({"q": "x", "top_k": 0}, "out_of_range"),
        ({"q": "x", "top_k": 21}, "out_of_range"),
        ({"q": "x", "top_k": "many"}, "invalid_type"),
        ({"q": "b" * 1001}, "question_too_long"),
    ],
)
def test_bad_get_ask_is_422(client: httpx.Client, params: dict, code: str) -> None:
    assert_error(client.get("/ask", params=params), 422, code)


def test_body_over_64_kib_is_413(client: httpx.Client) -> None:
    padding = "x" * MAX_JSON_BODY_BYTES
    declared = client.post("/ask", json={"question": "x", "padding": padding})
    assert_error(declared, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"question": "x", "padding": "'
        for _ in range(66):
            yield b"x" * 1024
        yield b'"}'

    chunked = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(chunked, 413, "body_too_large")
    # Under the limit, unknown fields are ignored and the question is answered.
    small = client.post("/ask", json={"question": "x", "padding": "x" * 60_000})
    assert small.status_code == 200


def test_unknown_route_and_method_are_json(client: httpx.Client) -> None:
    assert_error(client.get("/nowhere"), 404, "not_found")
    wrong_method = client.put("/ask", json={"question": "x"})
    assert_error(wrong_method, 405, "method_not_allowed")
    assert "POST" in wrong_method.headers["allow"]


def test_parallel_asks_match_serial_answers(client: httpx.Client) -> None:
    questions = [
        ON_TOPIC,
        OFF_TOPIC,
        "Đảng bộ có bao nhiêu đảng viên?",
        "Phương châm của Đảng bộ Ban Quản lý trong 9 tháng đầu năm 2022 là gì?",
        "Hội nghị sơ kết giữa nhiệm kỳ của Cần Thơ diễn ra khi nào?",
    ]
    serial = {
        q: without_timing(client.post("/ask", json={"question": q}).json()) for q in questions
    }

    async def ask_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=client.base_url, timeout=60, limits=limits) as ac:
            calls = [ac.post("/ask", json={"question": questions[i % 5]}) for i in range(50)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(ask_all())
    assert [r.status_code for r in responses] == [200] * 50
    for i, response in enumerate(responses):
        assert without_timing(response.json()) == serial[questions[i % 5]]


def test_request_log_has_path_but_never_the_question(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qabot.api")
    secret = "Câu hỏi bí mật về kế hoạch nhân sự"
    assert client.get("/ask", params={"q": secret, "top_k": 3}).status_code == 200
    assert client.post("/ask", json={"question": secret}).status_code == 200
    assert client.get("/nowhere").status_code == 404
    expected = [
        "request method=GET path=/ask status=200",
        "request method=POST path=/ask status=200",
        "request method=GET path=/nowhere status=404",
    ]
    deadline = time.monotonic() + 5  # a line is written just after its response is sent
    lines: list[str] = []
    while not all(any(e in line for line in lines) for e in expected):
        assert time.monotonic() < deadline, lines
        time.sleep(0.02)
        lines = [r.getMessage() for r in caplog.records if r.name == "qabot.api"]
    assert all(" ms=" in line for line in lines)
    logged = "\n".join(lines)
    assert "bí mật" not in logged and "top_k" not in logged and "?" not in logged


def test_unexpected_errors_are_a_json_500_and_logged(
    service: QAService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="qabot.api")
    app = create_app(service, make_settings())

    @app.get("/boom")  # a route that fails the way a bug would
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with serving(app) as client:
        # Uvicorn closes the connection after an app exception; don't reuse it for /health.
        response = client.get("/boom", headers={"Connection": "close"})
        assert response.status_code == 500
        assert response.json() == {"detail": INTERNAL_ERROR, "code": "internal_error"}
        assert "secret" not in response.text
        assert client.get("/health").status_code == 200  # the server keeps serving
    logged = [r for r in caplog.records if r.name == "qabot.api" and r.exc_info]
    assert logged and "secret internal detail" in str(logged[0].exc_info[1])


# --- /health -------------------------------------------------------------------------------


def test_health_reports_the_loaded_index(client: httpx.Client, service: QAService) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert set(health) == HEALTH_KEYS
    assert health["status"] == "ok"
    assert health["version"] == service.index.version
    assert health["documents"] == 5
    assert health["passages"] == len(service.index.passages) > 0
    assert health["embedder"] == service.embedder.id
    assert health["uptime_seconds"] >= 0
    assert health["calibration"] == "fitted"  # the bundled embedder ships its model file


def test_service_without_index_answers_503(tmp_path: Path, embedder) -> None:
    empty = QAService(tmp_path, embedder)
    with running(empty, make_settings()) as client:
        body = assert_error(client.get("/health"), 503, "no_index")
        assert "chỉ mục" in body["detail"]
        assert str(tmp_path) not in body["detail"]  # no server paths in messages
        assert_error(client.post("/ask", json={"question": ON_TOPIC}), 503, "no_index")
        assert_error(client.get("/documents"), 503, "no_index")
        assert_error(client.get(f"/documents/{HAI_PHONG}/paragraphs/1"), 503, "no_index")
        # Input is still checked first.
        assert_error(client.post("/ask", json={"question": " "}), 422, "empty_question")


# --- /documents ----------------------------------------------------------------------------


def test_documents_lists_the_reports(client: httpx.Client) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    documents = response.json()
    assert len(documents) == 5
    assert sorted(d["doc_id"] for d in documents) == sorted(p.name for p in REPORTS.iterdir())
    for document in documents:
        assert set(document) == DOCUMENT_KEYS
        assert document["title"].strip()
        assert document["paragraphs"] >= 1 and document["passages"] >= 1
    hai_phong = next(d for d in documents if d["doc_id"] == HAI_PHONG)
    assert hai_phong["date"] == "2018-07-11"
    assert hai_phong["paragraphs"] == HAI_PHONG_PARAGRAPHS


def test_documents_are_paged_and_filtered_newest_first(
    client: httpx.Client, service: QAService
) -> None:
    newest = [d.doc_id for d in service.documents()]
    response = client.get("/documents", params={"limit": 2})
    assert response.status_code == 200
    assert [d["doc_id"] for d in response.json()] == newest[:2]
    assert response.headers["X-Total-Count"] == "5"
    rest = client.get("/documents", params={"offset": 2, "limit": 10})
    assert [d["doc_id"] for d in rest.json()] == newest[2:]
    assert doc_ids(client) == newest  # no limit: every report
    dates = [d["date"] for d in client.get("/documents").json()]
    assert dates == sorted(dates, reverse=True)

    # Typed without diacritics, the filter finds the reports on Hải Phòng.
    found = client.get("/documents", params={"q": "hai phong"})
    titles = [d["title"] for d in found.json()]
    assert titles and all("Hải Phòng" in t for t in titles)
    assert found.headers["X-Total-Count"] == str(len(titles))
    none = client.get("/documents", params={"q": "không có báo cáo nào như thế"})
    assert none.json() == [] and none.headers["X-Total-Count"] == "0"

    limit = assert_error(client.get("/documents", params={"limit": 0}), 422, "out_of_range")
    assert limit["detail"] == "Số tài liệu một trang «limit» phải nằm trong khoảng 1 đến 500."
    assert_error(client.get("/documents", params={"offset": -1}), 422, "out_of_range")
    long = assert_error(client.get("/documents", params={"q": "x" * 201}), 422, "too_long")
    assert long["detail"] == "Từ khóa lọc «q» chỉ được dài tối đa 200 ký tự."


def test_paragraph_with_neighbours(client: httpx.Client) -> None:
    response = client.get(f"/documents/{HAI_PHONG}/paragraphs/2")
    assert response.status_code == 200
    context = response.json()
    assert context["paragraph"] == 2
    assert context["document"]["doc_id"] == HAI_PHONG
    assert set(context["document"]) == DOCUMENT_KEYS
    assert [p["number"] for p in context["paragraphs"]] == [1, 2, 3]
    assert all(p["text"].strip() for p in context["paragraphs"])

    alone = client.get(f"/documents/{HAI_PHONG}/paragraphs/2", params={"radius": 0}).json()
    assert [p["number"] for p in alone["paragraphs"]] == [2]
    assert alone["paragraphs"][0] == context["paragraphs"][1]
    last = client.get(f"/documents/{HAI_PHONG}/paragraphs/{HAI_PHONG_PARAGRAPHS}").json()
    assert [p["number"] for p in last["paragraphs"]] == [8, 9]
    wide = client.get(f"/documents/{HAI_PHONG}/paragraphs/5", params={"radius": 5}).json()
    assert [p["number"] for p in wide["paragraphs"]] == list(range(1, 10))


def test_paragraph_of_a_cited_passage(client: httpx.Client) -> None:
    passage = client.post("/ask", json={"question": ON_TOPIC}).json()["passages"][0]
    response = client.get(f"/documents/{passage['doc_id']}/paragraphs/{passage['paragraph']}")
    assert response.status_code == 200
    cited = next(p for p in response.json()["paragraphs"] if p["number"] == passage["paragraph"])
    assert cited["text"][:40] in passage["text"] or passage["text"][:40] in cited["text"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/documents/unknown-report.txt/paragraphs/1", 404, "not_found"),
        (f"/documents/{HAI_PHONG}/paragraphs/0", 404, "not_found"),
        (f"/documents/{HAI_PHONG}/paragraphs/{HAI_PHONG_PARAGRAPHS + 1}", 404, "not_found"),
        (f"/documents/{HAI_PHONG}/paragraphs/-1", 404, "not_found"),
        (f"/documents/{HAI_PHONG}/paragraphs/abc", 422, "invalid_type"),
        (f"/documents/{HAI_PHONG}/paragraphs/2?radius=6", 422, "out_of_range"),
        (f"/documents/{HAI_PHONG}/paragraphs/2?radius=-1", 422, "out_of_range"),
    ],
)
def test_paragraph_errors(client: httpx.Client, path: str, status: int, code: str) -> None:
    assert_error(client.get(path), status, code)


# --- docs, CORS ----------------------------------------------------------------------------


def test_openapi_docs_are_vietnamese(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/health", "/documents", "/reindex"} <= set(schema["paths"])
    assert {"get", "post"} <= set(schema["paths"]["/ask"])
    ask_request = schema["components"]["schemas"]["AskRequest"]
    assert {"question": "Đảng bộ có bao nhiêu đảng viên?", "top_k": 5} in ask_request["examples"]
    assert schema["paths"]["/ask"]["post"]["summary"] == "Đặt câu hỏi"
    assert "multipart/form-data" in schema["paths"]["/documents"]["post"]["requestBody"]["content"]


def test_cors_only_when_configured(client: httpx.Client, service: QAService) -> None:
    origin = "https://intranet.example"
    plain = client.get("/health", headers={"Origin": origin})
    assert "access-control-allow-origin" not in plain.headers
    with running(service, make_settings(cors_origins=[origin])) as cors_client:
        allowed = cors_client.get("/health", headers={"Origin": origin})
        assert allowed.headers["access-control-allow-origin"] == origin
        preflight = cors_client.options(
            "/ask",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin


# --- admin ---------------------------------------------------------------------------------


def upload(client: httpx.Client, *files: tuple[str, bytes], headers: dict | None = None):
    parts = [("files", (name, data, "text/plain")) for name, data in files]
    return client.post("/documents", files=parts, headers=AUTH if headers is None else headers)


ADMIN_CALLS = [
    ("POST", "/reindex"),
    ("DELETE", f"/documents/{HAI_PHONG}"),
    ("POST", "/documents"),
]


def call_admin(client: httpx.Client, method: str, path: str, headers: dict) -> httpx.Response:
    if path == "/documents":
        return upload(client, (NEW_REPORT_NAME, NEW_REPORT.encode()), headers=headers)
    return client.request(method, path, headers=headers)


BAD_CREDENTIALS = [
    ({}, "missing_token"),
    ({"Authorization": "Basic czNjcmV0"}, "missing_token"),
    ({"Authorization": "Bearer"}, "missing_token"),
    ({"Authorization": "Bearer wrong"}, "invalid_token"),
    ({"Authorization": f"Bearer {TOKEN}x"}, "invalid_token"),
    ({"Authorization": f"bearer {TOKEN[:-1]}"}, "invalid_token"),
    ({"Authorization": "Bearer s3cr\xe9t".encode("latin-1")}, "invalid_token"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_refused_without_the_token(
    admin: httpx.Client, writable_service: QAService, method: str, path: str
) -> None:
    version = writable_service.index.version
    for headers, code in BAD_CREDENTIALS:  # one server for all cases: nothing may change
        response = call_admin(admin, method, path, headers)
        assert_error(response, 401, code)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (writable_service.docs_dir / HAI_PHONG).is_file()
    assert not (writable_service.docs_dir / NEW_REPORT_NAME).exists()
    assert writable_service.index.version == version
    assert call_admin(admin, method, path, AUTH).status_code in (200, 201)


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_disabled_without_configured_token(
    client: httpx.Client, service: QAService, method: str, path: str
) -> None:
    version = service.index.version
    body = assert_error(call_admin(client, method, path, AUTH), 403, "admin_disabled")
    assert "QABOT_ADMIN_TOKEN" in body["detail"]
    assert service.index.version == version
    assert HAI_PHONG in doc_ids(client)


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("../x.txt", NEW_REPORT.encode(), 422, "invalid_name"),
        ("a/b.txt", NEW_REPORT.encode(), 422, "invalid_name"),
        ("..\\x.txt", NEW_REPORT.encode(), 422, "invalid_name"),
        ("/tmp/x.txt", NEW_REPORT.encode(), 422, "invalid_name"),
        (".hidden.txt", NEW_REPORT.encode(), 422, "invalid_name"),
        ("", NEW_REPORT.encode(), 422, "invalid_form"),  # no file name: not a file
        ("report.exe", NEW_REPORT.encode(), 422, "unsupported_type"),
        ("empty.txt", b"  \n ", 422, "empty_file"),
        ("broken.pdf", b"this is not a PDF file at all", 422, "unreadable"),
        ("broken.docx", b"this is not a DOCX file at all", 422, "unreadable"),
        ("big.txt", "Báo cáo dài. ".encode() * 400, 413, "too_large"),
    ],
)
def test_upload_refuses_bad_files(
    admin: httpx.Client, writable_service: QAService, name: str, data: bytes, status: int, code: str
) -> None:
    docs = writable_service.docs_dir
    before = sorted(p.name for p in docs.iterdir())
    body = assert_error(upload(admin, (name, data)), status, code)
    if code == "too_large":
        assert len(data) > MAX_UPLOAD and "KB" in body["detail"]
    assert sorted(p.name for p in docs.iterdir()) == before
    assert not (docs.parent / "x.txt").exists() and not (docs / "a").exists()
    assert len(doc_ids(admin)) == 5


def test_upload_is_all_or_nothing(admin: httpx.Client, writable_service: QAService) -> None:
    good = (NEW_REPORT_NAME, NEW_REPORT.encode())
    assert_error(upload(admin, good, ("../x.txt", "Một dòng.".encode())), 422, "invalid_name")
    assert not (writable_service.docs_dir / NEW_REPORT_NAME).exists()
    assert_error(upload(admin), 422, "no_files")  # no files at all


def test_upload_over_the_request_limit_is_413(admin: httpx.Client) -> None:
    huge = b"x" * (MAX_UPLOAD * 20 + 100 * 1024)  # beyond every file's cap plus overhead
    assert_error(upload(admin, ("huge.txt", huge)), 413, "body_too_large")


def test_upload_ask_and_delete_a_report(admin: httpx.Client, writable_service: QAService) -> None:
    assert len(NEW_REPORT.encode()) < MAX_UPLOAD
    response = upload(admin, (NEW_REPORT_NAME, NEW_REPORT.encode()))
    assert response.status_code == 201, response.text
    change = response.json()
    assert change["doc_ids"] == [NEW_REPORT_NAME]
    assert change["summary"]["added"] == 1 and change["summary"]["documents"] == 6
    assert change["summary"]["published"] is True
    assert (writable_service.docs_dir / NEW_REPORT_NAME).is_file()

    documents = {d["doc_id"]: d for d in admin.get("/documents").json()}
    assert documents[NEW_REPORT_NAME]["date"] == "2025-05-20"
    assert "Tràng Duệ" in documents[NEW_REPORT_NAME]["title"]
    answer = admin.post("/ask", json={"question": NEW_REPORT_QUESTION}).json()
    assert answer["found"] is True
    assert answer["passages"][0]["doc_id"] == NEW_REPORT_NAME
    assert "320" in answer["answer"]

    again = upload(admin, ("copy-" + NEW_REPORT_NAME, NEW_REPORT.encode()))
    assert_error(again, 409, "duplicate")
    same_name = upload(admin, (NEW_REPORT_NAME, NEW_REPORT.encode() + b"\nThem."))
    assert_error(same_name, 409, "exists")

    deleted = admin.delete(f"/documents/{NEW_REPORT_NAME}", headers=AUTH)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["doc_ids"] == [NEW_REPORT_NAME]
    assert deleted.json()["summary"]["removed"] == 1
    assert deleted.json()["summary"]["documents"] == 5
    assert not (writable_service.docs_dir / NEW_REPORT_NAME).exists()
    assert NEW_REPORT_NAME not in doc_ids(admin)
    after = admin.post("/ask", json={"question": NEW_REPORT_QUESTION}).json()
    assert all(p["doc_id"] != NEW_REPORT_NAME for p in after["passages"])

    gone = admin.delete(f"/documents/{NEW_REPORT_NAME}", headers=AUTH)
    assert_error(gone, 404, "not_found")


def test_delete_refuses_paths_outside_the_docs_folder(
    admin: httpx.Client, writable_service: QAService
) -> None:
    outside = writable_service.docs_dir.parent / "outside.txt"
    outside.write_text("Không được xóa tệp này.", encoding="utf-8")
    response = admin.delete("/documents/..%2Foutside.txt", headers=AUTH)
    assert_error(response, 422, "invalid_name")
    assert outside.is_file()


def test_reindex_picks_up_new_files(admin: httpx.Client, writable_service: QAService) -> None:
    (writable_service.docs_dir / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    response = admin.post("/reindex", headers=AUTH)
    assert response.status_code == 200, response.text
    summary = response.json()["summary"]
    assert summary["added"] == 1 and summary["documents"] == 6 and summary["published"]
    assert NEW_REPORT_NAME in doc_ids(admin)
    unchanged = admin.post("/reindex", headers=AUTH).json()["summary"]
    assert unchanged["published"] is False and unchanged["added"] == 0


def test_reindex_while_another_build_runs_is_409(
    admin: httpx.Client, writable_service: QAService
) -> None:
    with writer_lock(writable_service.index_dir):
        response = admin.post("/reindex", params={"wait": 0}, headers=AUTH)
    body = assert_error(response, 409, "index_busy")
    assert "thử lại" in body["detail"]
    assert admin.post("/reindex", params={"wait": 0}, headers=AUTH).status_code == 200


# --- qabot serve ---------------------------------------------------------------------------


def test_serve_command_reloads_new_index_versions(
    tmp_path: Path, docs_copy: Path, index_copy: Path, embedder
) -> None:
    """`qabot serve` end to end: announces its URL, serves, picks up a new index version
    without restarting, logs requests without questions, and stops cleanly on Ctrl+C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QABOT_")}
    env.update(
        QABOT_HOST="127.0.0.1",
        QABOT_PORT="0",  # the OS picks a free port; serve prints it
        QABOT_INDEX_DIR=str(index_copy),
        QABOT_DOCS_DIR=str(docs_copy),
        QABOT_RELOAD_SECONDS="0.2",
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "qabot.cli", "serve"],
            cwd=tmp_path,  # no .env here
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        url = ""
        while not url:
            line = lines.get(timeout=30)
            url = next((w for w in line.split() if w.startswith("http://127.0.0.1:")), "")
        assert "/ask" in lines.get(timeout=5)  # the curl example
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/health").json()["documents"] == 5
            secret = "Câu hỏi riêng tư không được ghi log"
            assert client.get("/ask", params={"q": secret}).status_code == 200

            (docs_copy / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
            build_index(docs_copy, index_copy, embedder)
            deadline = time.monotonic() + 10
            while client.get("/health").json()["documents"] != 6:
                assert time.monotonic() < deadline, "the new index version was not picked up"
                time.sleep(0.1)
            answer = client.post("/ask", json={"question": NEW_REPORT_QUESTION}).json()
            assert answer["passages"][0]["doc_id"] == NEW_REPORT_NAME
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) in (0, 130)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log_text = log_path.read_text(encoding="utf-8")
    assert "request method=GET path=/health status=200" in log_text
    assert "path=/ask status=200" in log_text
    assert "riêng tư" not in log_text and "Traceback" not in log_text
    frozen = re.search(r"frozen for the garbage collector count=(\d+)", log_text)
    assert frozen is not None and int(frozen.group(1)) > 10_000


def test_ask_reports_the_question_with_its_diacritics_restored(client: httpx.Client) -> None:
    typed = "Dang uy Khu kinh te Hai Phong co nhung co quan tham muu giup viec nao?"
    for response in (
        client.get("/ask", params={"q": typed}),
        client.post("/ask", json={"question": typed}),
    ):
        assert response.status_code == 200
        body = response.json()
        assert body["question"] == typed
        assert body["interpreted_question"] == ON_TOPIC
        assert body["found"] is True
    accented = client.get("/ask", params={"q": ON_TOPIC}).json()
    assert accented["interpreted_question"] == ON_TOPIC
    assert body["passages"][0]["text"] == accented["passages"][0]["text"]


def test_ask_accepts_a_conversation_history(client: httpx.Client) -> None:
    alone = client.post("/ask", json={"question": ON_TOPIC}).json()
    with_history = client.post(
        "/ask", json={"question": ON_TOPIC, "history": [OFF_TOPIC, "Còn ở Cần Thơ thì sao?"]}
    )
    assert with_history.status_code == 200
    body = with_history.json()
    assert body["question"] == ON_TOPIC
    assert body["interpreted_question"] == alone["interpreted_question"] == ON_TOPIC
    history_limit = client.post("/ask", json={"question": "x", "history": ["q"] * 10})
    assert history_limit.status_code == 200


def test_a_follow_up_is_searched_as_the_question_it_means(client: httpx.Client) -> None:
    history = ["Đảng ủy Khu kinh tế Hải Phòng hiện có bao nhiêu đảng viên?"]
    body = client.post("/ask", json={"question": "Ở Cần Thơ thì bao nhiêu?", "history": history})
    assert body.status_code == 200
    answer = body.json()
    assert answer["question"] == "Ở Cần Thơ thì bao nhiêu?"
    assert answer["interpreted_question"] == "Cần Thơ hiện có bao nhiêu đảng viên?"
    assert answer["found"] is True and "611" in answer["answer"]
    off_topic = client.post(
        "/ask", json={"question": "Còn giá vàng hôm nay thì sao?", "history": history}
    ).json()
    assert off_topic["found"] is False
    assert off_topic["interpreted_question"] == "Còn giá vàng hôm nay thì sao?"


def test_an_answer_reads_over_http_as_its_plain_data(service):
    """/ask's body is read from the Answer dataclasses' attributes (no copy into dicts): the
    same values as the answer's own dict, highlights and unanswered questions included."""
    from qabot.http.schemas import AnswerOut

    answers = [service.ask(q, 5) for q in (ON_TOPIC, HAI_PHONG, "Thời tiết ở Sao Hỏa thế nào?")]
    assert any(p.highlight for a in answers for p in a.passages)
    assert not all(a.found for a in answers)
    for answer in answers:
        as_json = json.loads(json.dumps(answer.to_dict(), ensure_ascii=False))
        assert json.loads(AnswerOut.of(answer).model_dump_json()) == as_json
