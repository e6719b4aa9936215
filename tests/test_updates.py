"""Adding and removing reports while the API runs: no restart, no lost or corrupt index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from qabot.service import NotReadyError, QAService

from .test_api import NEW_REPORT, NEW_REPORT_NAME, NEW_REPORT_QUESTION, make_settings, running

RELOAD_SECONDS = 0.5


def qabot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qabot.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "QABOT_EMBEDDER": "bundled"},
    )


def cited_docs(client: httpx.Client, question: str) -> tuple[bool, set[str]]:
    answer = client.post("/ask", json={"question": question, "top_k": 5}).json()
    return answer["found"], {p["doc_id"] for p in answer["passages"]}


def wait_until(condition, seconds: float) -> float:
    """Seconds it took for ``condition()`` to hold; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


@pytest.fixture
def live(writable_service: QAService):
    writable_service.watch(RELOAD_SECONDS)
    with running(writable_service, make_settings()) as client:
        yield client, writable_service


def test_index_add_is_answered_by_the_running_server_and_remove_takes_it_away(live, tmp_path):
    client, service = live
    found, docs = cited_docs(client, NEW_REPORT_QUESTION)
    assert NEW_REPORT_NAME not in docs
    report = tmp_path / NEW_REPORT_NAME
    report.write_text(NEW_REPORT, encoding="utf-8")
    version = client.get("/health").json()["version"]

    added = qabot(
        "index",
        "add",
        str(report),
        "--docs",
        str(service.docs_dir),
        "--index",
        str(service.index_dir),
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert '"added": 1' in added.stdout
    waited = wait_until(lambda: cited_docs(client, NEW_REPORT_QUESTION)[1] >= {NEW_REPORT_NAME}, 10)
    assert waited < 10
    found, docs = cited_docs(client, NEW_REPORT_QUESTION)
    assert found and NEW_REPORT_NAME in docs
    assert client.get("/health").json()["version"] != version

    removed = qabot(
        "index",
        "remove",
        NEW_REPORT_NAME,
        "--docs",
        str(service.docs_dir),
        "--index",
        str(service.index_dir),
    )
    assert removed.returncode == 0, removed.stderr
    wait_until(lambda: NEW_REPORT_NAME not in cited_docs(client, NEW_REPORT_QUESTION)[1], 10)
    assert not (service.docs_dir / NEW_REPORT_NAME).exists()
    assert NEW_REPORT_NAME not in {d["doc_id"] for d in client.get("/documents").json()}


def test_a_killed_build_leaves_the_server_answering_from_the_previous_version(live):
    client, service = live
    version = client.get("/health").json()["version"]
    long_report = "\n\n".join(
        f"Đoạn {i}: Ban Chấp hành đã họp phiên thứ {i} về phát triển đảng viên trong doanh nghiệp "
        f"số {i} và thống nhất nhiều giải pháp cụ thể cho năm tới."
        for i in range(60)
    )
    (service.docs_dir / "dai.txt").write_text("Báo cáo dài\n\n" + long_report, encoding="utf-8")
    build = subprocess.Popen(
        [sys.executable, "-m", "qabot.cli", "index", "build", "--docs", str(service.docs_dir),
         "--index", str(service.index_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "QABOT_EMBEDDER": "bundled"},
    )  # fmt: skip
    time.sleep(2.0)
    build.send_signal(signal.SIGKILL)
    build.wait()
    time.sleep(2 * RELOAD_SECONDS)
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["version"] == version
    answer = client.post("/ask", json={"question": "Đảng ủy có những cơ quan tham mưu nào?"})
    assert answer.status_code == 200 and answer.json()["found"] is True


def test_watch_mode_indexes_files_dropped_into_the_docs_folder(live):
    client, service = live
    service.watch_docs(RELOAD_SECONDS)
    (service.docs_dir / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    wait_until(lambda: NEW_REPORT_NAME in cited_docs(client, NEW_REPORT_QUESTION)[1], 30)
    (service.docs_dir / NEW_REPORT_NAME).unlink()
    wait_until(lambda: NEW_REPORT_NAME not in cited_docs(client, NEW_REPORT_QUESTION)[1], 30)


def test_in_flight_requests_finish_on_the_old_version(writable_service: QAService, tmp_path):
    service = writable_service
    searcher_before = service._searcher
    (service.docs_dir / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    service.rebuild()
    assert service._searcher is not searcher_before
    # The old searcher, held by a request that started before the switch, still works.
    result = searcher_before.search(NEW_REPORT_QUESTION, 5)
    assert all(hit.passage.doc_id != NEW_REPORT_NAME for hit in result.hits)
    assert NEW_REPORT_NAME in {
        h.passage.doc_id for h in service._searcher.search(NEW_REPORT_QUESTION, 5).hits
    }


def test_remove_restores_files_when_the_index_cannot_be_updated(writable_service: QAService):
    from qabot.index import IndexBusyError
    from qabot.index.layout import writer_lock

    service = writable_service
    doc_id = sorted(p.name for p in service.docs_dir.iterdir())[0]
    with writer_lock(service.index_dir), pytest.raises(IndexBusyError):
        service.remove_documents([doc_id], wait_seconds=0.5)  # waits for the lock, gives up
    assert (service.docs_dir / doc_id).is_file()
    assert not any(p.name.startswith(".removing") for p in service.docs_dir.iterdir())


def test_a_library_only_service_changes_the_index_without_opening_it(
    docs_copy, index_copy, embedder
) -> None:
    # What `qabot index add` / `index remove` use: at a million passages opening the index
    # before the change, and the new version after it, cost seconds nobody waits for.
    library = QAService(index_copy, embedder, docs_dir=docs_copy, serve=False)
    assert library.index is None
    added, summary = library.add_documents([(NEW_REPORT_NAME, NEW_REPORT.encode())])
    assert [a.doc_id for a in added] == [NEW_REPORT_NAME] and summary.published
    assert library.index is None  # the new version was not opened either
    with pytest.raises(NotReadyError):
        library.ask(NEW_REPORT_QUESTION)

    serving = QAService(index_copy, embedder, docs_dir=docs_copy)
    assert serving.index.version == summary.version
    assert NEW_REPORT_NAME in {d.doc_id for d in serving.documents()}
    assert serving.ask(NEW_REPORT_QUESTION).found

    removed = library.remove_documents([NEW_REPORT_NAME])
    assert removed.published and library.index is None
    assert not (docs_copy / NEW_REPORT_NAME).exists()
    serving.reload()
    assert NEW_REPORT_NAME not in {d.doc_id for d in serving.documents()}
