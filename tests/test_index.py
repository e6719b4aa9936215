"""The versioned index: incremental builds, the embedding cache, atomic switches, the lock."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qabot.index import (
    IndexBusyError,
    IndexMismatchError,
    IndexMissingError,
    build_index,
    open_index,
)
from qabot.index.layout import VERSIONS, current_version, writer_lock

NEW_REPORT = (
    "Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động\n\n"
    "Ngày 5/9/2025, Ban Quản lý Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động "
    "cho 120 công nhân đến từ các doanh nghiệp may mặc. Lớp học kéo dài hai ngày.\n\n"
    "Các học viên được hướng dẫn sơ cứu, thoát hiểm và phòng cháy chữa cháy tại nơi làm việc.\n"
)


def test_index_holds_vectors_bm25_and_metadata(reports_index, embedder):
    index = open_index(reports_index, embedder.id)
    assert len(index.documents) == 5
    assert index.vectors.ntotal == len(index.passages) > 50
    assert index.manifest["embedder_id"] == embedder.id
    assert index.manifest["dim"] == 384
    # Accent-folded twins: "dang vien" finds the passages about "đảng viên".
    term = index.bm25.vocabulary["~dang_vien"]
    assert index.bm25.indptr[term + 1] > index.bm25.indptr[term]
    assert "đảng_viên" in index.bm25.vocabulary


def test_rebuilding_an_unchanged_corpus_embeds_nothing(docs_copy, index_copy, embedder):
    before = current_version(index_copy)
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.embedded == 0
    assert summary.reused == summary.passages > 0
    assert summary.unchanged == 5 and summary.added == summary.changed == summary.removed == 0
    assert not summary.published and current_version(index_copy) == before


def test_a_new_index_folder_reuses_the_embedding_cache(docs_copy, index_copy, tmp_path, embedder):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "embedding_cache.sqlite").write_bytes(
        (index_copy / "embedding_cache.sqlite").read_bytes()
    )
    summary = build_index(docs_copy, fresh, embedder)
    assert summary.published and summary.documents == 5
    assert summary.embedded == 0


def test_adding_one_report_embeds_only_its_passages(docs_copy, index_copy, embedder):
    (docs_copy / "2025-09-05-trang-due.txt").write_text(NEW_REPORT, encoding="utf-8")
    summary = build_index(docs_copy, index_copy, embedder)
    index = open_index(index_copy, embedder.id)
    new_passages = [p for p in index.passages if p.doc_id == "2025-09-05-trang-due.txt"]
    assert summary.added == 1 and summary.unchanged == 5
    assert summary.embedded == len(new_passages) >= 1
    assert summary.documents == 6


def test_changed_and_removed_documents(docs_copy, index_copy, embedder):
    first, second = sorted(docs_copy.iterdir())[:2]
    first.write_text(
        first.read_text(encoding="utf-8") + "\nĐoạn bổ sung mới về công tác cán bộ.\n",
        encoding="utf-8",
    )
    second.unlink()
    summary = build_index(docs_copy, index_copy, embedder)
    assert (summary.changed, summary.removed, summary.unchanged) == (1, 1, 3)
    assert 1 <= summary.embedded <= 3  # only the edited passage (and its neighbours) is new
    index = open_index(index_copy, embedder.id)
    # The removed document's rows are tombstones (or merged away): never a live row.
    live = [p for row, p in enumerate(index.passages) if not index.is_deleted(row)]
    assert all(p.doc_id != second.name for p in live)
    assert any(p.doc_id == first.name for p in live)
    assert {d.doc_id for d in index.documents} == {p.name for p in docs_copy.iterdir()}


def test_broken_files_are_skipped_and_named(docs_copy, index_copy, embedder):
    (docs_copy / "hong.docx").write_bytes(b"PK\x03\x04 broken")
    (docs_copy / "rong.txt").write_bytes(b"")
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.skipped == 2
    assert {s.source for s in summary.skipped_files} == {"hong.docx", "rong.txt"}
    assert summary.documents == 5


def test_old_versions_are_pruned(docs_copy, index_copy, embedder):
    for n in range(3):
        (docs_copy / f"extra-{n}.txt").write_text(
            NEW_REPORT.replace("120", str(200 + n)), encoding="utf-8"
        )
        build_index(docs_copy, index_copy, embedder)
        time.sleep(1.1)  # version names carry the second
    versions = [p for p in (index_copy / VERSIONS).iterdir()]
    assert len(versions) == 2
    assert current_version(index_copy) in {p.name for p in versions}


def test_a_different_embedder_is_refused_with_a_rebuild_hint(reports_index):
    with pytest.raises(IndexMismatchError, match="qabot index build"):
        open_index(reports_index, "sentence-transformers/some-other-model")


def test_missing_index(tmp_path):
    with pytest.raises(IndexMissingError, match="qabot index build"):
        open_index(tmp_path / "nothing-here")


def test_a_second_writer_is_refused_while_one_builds(docs_copy, index_copy, embedder):
    with writer_lock(index_copy):
        with pytest.raises(IndexBusyError, match="tiến trình khác"):
            build_index(docs_copy, index_copy, embedder)
        started = time.monotonic()
        with pytest.raises(IndexBusyError):
            build_index(docs_copy, index_copy, embedder, wait_seconds=0.5)
        assert time.monotonic() - started >= 0.5
    assert build_index(docs_copy, index_copy, embedder).documents == 5


def _build_process(docs: Path, index: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qabot.cli",
            "index",
            "build",
            "--docs",
            str(docs),
            "--index",
            str(index),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QABOT_EMBEDDER": "bundled"},
    )


def _long_report(n: int) -> str:
    paragraphs = [
        f"Đoạn {i}: Ban Chấp hành Đảng bộ khóa mới đã họp phiên thứ {i} để bàn về công tác "
        f"phát triển đảng viên trong doanh nghiệp số {n * 100 + i}, với nhiều ý kiến xác đáng."
        for i in range(40)
    ]
    return f"Báo cáo dài số {n}\n\n" + "\n\n".join(paragraphs) + "\n"


@pytest.mark.parametrize("kill_after", [0.8, 2.5, 5.0])
def test_a_killed_build_leaves_the_previous_version_serving(
    docs_copy, index_copy, embedder, kill_after
):
    before = current_version(index_copy)
    (docs_copy / "dai.txt").write_text(_long_report(int(kill_after * 10)), encoding="utf-8")
    process = _build_process(docs_copy, index_copy)
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait()
    version = current_version(index_copy)
    index = open_index(index_copy, embedder.id)  # whichever version is live opens whole
    assert version in (before, index.version)
    if version == before:
        assert len(index.documents) == 5
    # The next build finishes the job, reusing what the killed one embedded.
    summary = build_index(docs_copy, index_copy, embedder)
    assert open_index(index_copy, embedder.id).document("dai.txt") is not None
    assert summary.documents == 6
    assert not any(p.name.startswith(".") for p in (index_copy / VERSIONS).iterdir())


def test_two_concurrent_builds_do_not_corrupt_the_index(docs_copy, index_copy, embedder):
    (docs_copy / "dai.txt").write_text(_long_report(7), encoding="utf-8")
    first = _build_process(docs_copy, index_copy)
    time.sleep(0.3)
    second = _build_process(docs_copy, index_copy)
    outcomes = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes in ([0, 0], [0, 1])
    for code, out, err in outcomes:
        if code == 1:
            assert "tiến trình khác" in err and "Traceback" not in err
        else:
            assert json.loads(out)["documents"] == 6
    index = open_index(index_copy, embedder.id)
    assert len(index.documents) == 6 and index.vectors.ntotal == len(index.passages)
