"""Incremental updates by segments: adding a report writes one new segment and leaves the
others untouched, BM25 scores stay those of a build of everything at once, removed reports
never come back, merges keep results, damage and pruning work per segment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qabot.index import bm25 as bm25_module
from qabot.index import build as build_module
from qabot.index import build_index, open_index
from qabot.index.bm25 import SegmentedBM25
from qabot.index.layout import (
    CACHE,
    CURRENT,
    SEGMENTS,
    VERIFIED,
    VERSIONS,
    current_version,
    hold_version,
    inspect_index,
    read_manifest,
    version_segments,
)
from qabot.service import QAService

from .conftest import REPORTS
from .test_api import NEW_REPORT, NEW_REPORT_NAME, NEW_REPORT_QUESTION

QUESTIONS = [
    "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?",
    "Có bao nhiêu đảng viên mới được kết nạp?",
    "Cần Thơ sơ kết giữa nhiệm kỳ",
    "doanh nghiep co to chuc cong doan",
]


def segment_ids(index_dir: Path, version: str | None = None) -> list[str]:
    manifest = read_manifest(index_dir, version or current_version(index_dir))
    return [s["id"] for s in version_segments(manifest)]


def file_marks(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every data file's inode and times (verified.json, the sidecar that remembers when
    the files were last hashed whole, apart)."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_ctime_ns)
        for p in sorted(folder.iterdir())
        if p.name != VERIFIED
    }


def fresh_index(tmp_path: Path, reports_index: Path, name: str) -> Path:
    """An empty index folder with the shared index's embedding cache (no embedding cost)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(reports_index / CACHE, folder / CACHE)
    return folder


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory, reports_index, embedder) -> Path:
    """The sample reports added one build at a time, in the docs folder's order."""
    root = tmp_path_factory.mktemp("one-by-one")
    docs, index_dir = root / "docs", fresh_index(root, reports_index, "index")
    docs.mkdir()
    for report in sorted(REPORTS.iterdir()):
        shutil.copy(report, docs / report.name)
        summary = build_index(docs, index_dir, embedder)
        assert summary.published and summary.added == 1 and not summary.merged
    return index_dir


def scores_by_passage(index, terms: list[str]) -> dict[tuple[str, int], float]:
    touched = index.bm25.touched(index.bm25.term_ids(terms))
    return {
        (index.passages[int(r)].doc_id, index.passages[int(r)].ordinal): float(s)
        for r, s in zip(touched.rows, touched.scores, strict=True)
    }


def test_adding_a_report_writes_one_new_segment_and_touches_no_other(
    docs_copy, index_copy, embedder
):
    before = segment_ids(index_copy)
    marks = {s: file_marks(index_copy / SEGMENTS / s) for s in before}
    (docs_copy / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")

    summary = build_index(docs_copy, index_copy, embedder)

    after = segment_ids(index_copy)
    assert summary.published and summary.added == 1 and summary.unchanged == 5
    assert after[:-1] == before and len(after) == len(before) + 1 == summary.segments
    for segment in before:  # not rewritten, not even touched
        assert file_marks(index_copy / SEGMENTS / segment) == marks[segment]
    index = open_index(index_copy, embedder.id)
    new_rows = index.segments[-1].passages
    assert {p.doc_id for p in new_rows} == {NEW_REPORT_NAME}
    assert summary.embedded <= 2 * len(new_rows) + 200  # only the new report's texts
    assert summary.passages == len(index.passages) == index.manifest["passages"]


def test_scores_of_reports_added_one_by_one_equal_a_build_of_all(
    one_by_one, reports_index, embedder
):
    whole = open_index(reports_index, embedder.id)
    grown = open_index(one_by_one, embedder.id)
    assert len(grown.segments) == 5 and len(whole.segments) == 1
    assert isinstance(grown.bm25, SegmentedBM25)
    assert [(p.doc_id, p.ordinal) for p in grown.passages] == [
        (p.doc_id, p.ordinal) for p in whole.passages
    ]
    for terms in (
        ["đảng", "viên", "kết", "nạp", "đảng_viên"],
        ["~dang", "~vien", "hải", "phòng", "sơ_kết"],
        ["cần", "thơ", "nhiệm", "kỳ", "không_có_đâu"],
    ):
        assert scores_by_passage(grown, terms) == scores_by_passage(whole, terms)  # bit for bit
        for term in terms:
            if term in whole.bm25.vocabulary:
                t, g = whole.bm25.vocabulary[term], grown.bm25.vocabulary[term]
                assert whole.bm25.idf[t] == grown.bm25.idf[g]
                assert whole.bm25.term_weight[t] == grown.bm25.term_weight[g]
            else:
                assert term not in grown.bm25.vocabulary
        # Asked again, a term's weighed postings come from the segmented index's memory.
        assert scores_by_passage(grown, terms) == scores_by_passage(whole, terms)
    assert whole.bm25.term_weight.max() == grown.bm25.term_weight.max()
    assert whole.bm25.idf.max() == grown.bm25.idf.max()
    assert len(grown.bm25.vocabulary) == len(whole.bm25.vocabulary)
    assert [d.doc_id for d in grown.documents] == [d.doc_id for d in whole.documents]
    # Restoring diacritics uses statistics merged from the segments: the same as one build's.
    assert grown.restorer.restore("dang vien moi") == whole.restorer.restore("dang vien moi")


def test_answers_of_reports_added_one_by_one_equal_a_build_of_all(
    one_by_one, reports_index, embedder
):
    whole, grown = QAService(reports_index, embedder), QAService(one_by_one, embedder)
    try:
        for question in QUESTIONS:
            a, b = whole.ask(question, top_k=5), grown.ask(question, top_k=5)
            assert [(p.doc_id, p.paragraph, p.text, p.score) for p in a.passages] == [
                (p.doc_id, p.paragraph, p.text, p.score) for p in b.passages
            ]
            assert a.answer == b.answer and a.found == b.found
    finally:
        whole.close()
        grown.close()


def test_a_removed_report_is_a_tombstone_never_shown(docs_copy, index_copy, embedder):
    (docs_copy / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    build_index(docs_copy, index_copy, embedder)
    service = QAService(index_copy, embedder, docs_dir=docs_copy)
    try:
        assert NEW_REPORT_NAME in {p.doc_id for p in service.ask(NEW_REPORT_QUESTION).passages}
        removed = "2018-06-12-can-tho-so-ket-giua-nhiem-ky.txt"
        segments_before = segment_ids(index_copy)
        (docs_copy / NEW_REPORT_NAME).unlink()
        (docs_copy / removed).unlink()
        summary = build_index(docs_copy, index_copy, embedder)
        assert summary.removed == 2 and summary.published and not summary.merged
        manifest = read_manifest(index_copy, current_version(index_copy))
        # The new report's segment held nothing else: it leaves the version.
        assert segment_ids(index_copy) == segments_before[:1]
        assert version_segments(manifest)[0]["deleted"] == [removed]
        service.reload()
        index = service.index
        assert index.segments[0].deleted is not None and index.segments[0].deleted.any()
        shown = set()
        for question in [*QUESTIONS, NEW_REPORT_QUESTION, "Cần Thơ sơ kết giữa nhiệm kỳ"]:
            for top_k in (5, 20):
                shown |= {p.doc_id for p in service.ask(question, top_k=top_k).passages}
            dense = index.vectors.search(embedder.embed_queries([question]), len(index.passages))
            rows = [int(r) for r in dense[1][0] if r >= 0]
            assert len(rows) == len(index.passages) - int(index.segments[0].deleted.sum())
            assert removed not in {index.passages[r].doc_id for r in rows}
            # A few best live rows equal an exact search over the live rows (the removed
            # report's rows, the nearest to its own question, are over-fetched past).
            vector = embedder.embed_queries([question])
            live = [r for r in range(len(index.passages)) if not index.is_deleted(r)]
            exact = np.array([index.vectors.reconstruct(r) @ vector[0] for r in live])
            for k in (1, 3, 10):
                best = [live[i] for i in np.argsort(-exact, kind="stable")[:k]]
                assert index.vectors.search(vector, k)[1][0].tolist() == best
        assert shown and removed not in shown and NEW_REPORT_NAME not in shown
        assert removed not in {d.doc_id for d in service.documents()}
        assert index.document(removed) is None and index.paragraphs(removed, 0, 99) == []
        assert index.manifest["documents"] == 4 == len(index.documents)
        assert service.status()["passages"] == index.manifest["passages"] == index.live_passages
        assert index.live_passages < len(index.passages)
    finally:
        service.close()


def test_a_changed_report_replaces_its_old_rows(docs_copy, index_copy, embedder, monkeypatch):
    monkeypatch.setattr(build_module, "MAX_DELETED_SHARE", 0.9)  # no merge: a tombstone
    changed = docs_copy / "2024-03-29-hai-phong-tiep-doan-ha-tinh.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8") + "\n\nĐoàn đã trồng 77 cây lưu niệm.\n",
        encoding="utf-8",
    )
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.changed == 1 and summary.segments == 2
    index = open_index(index_copy, embedder.id)
    rows = [r for r, p in enumerate(index.passages) if p.doc_id == changed.name]
    live = [r for r in rows if not index.is_deleted(r)]
    assert live and len(rows) > len(live)
    assert all(index.segment_of(r) is index.segments[-1] for r in live)
    assert index.document(changed.name).content_hash != ""
    touched = index.bm25.touched(index.bm25.term_ids(["hải", "phòng", "hà", "tĩnh"]))
    assert not set(touched.rows.tolist()) & (set(rows) - set(live))


def test_a_merge_keeps_results_identical(one_by_one, reports_index, embedder, tmp_path):
    index_dir = tmp_path / "merged"
    shutil.copytree(one_by_one, index_dir, ignore=shutil.ignore_patterns("build.lock"))
    docs = tmp_path / "docs"
    shutil.copytree(REPORTS, docs)
    (docs / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    build_module_max = build_module.MAX_SEGMENTS
    build_module.MAX_SEGMENTS = 5  # the sixth segment would be one too many
    try:
        summary = build_index(docs, index_dir, embedder)
    finally:
        build_module.MAX_SEGMENTS = build_module_max
    # Six segments for at most five: the four smallest are merged with the new report, so
    # two remain (MAX_SEGMENTS // 2), as build.merge_choice says.
    assert summary.merged and summary.segments == 2 and summary.documents == 6
    fresh = fresh_index(tmp_path, reports_index, "fresh")
    build_index(docs, fresh, embedder)
    merged_service, fresh_service = QAService(index_dir, embedder), QAService(fresh, embedder)
    try:
        for question in [*QUESTIONS, NEW_REPORT_QUESTION]:
            a, b = merged_service.ask(question), fresh_service.ask(question)
            assert [(p.doc_id, p.text, p.score) for p in a.passages] == [
                (p.doc_id, p.text, p.score) for p in b.passages
            ]
    finally:
        merged_service.close()
        fresh_service.close()
    assert not build_index(docs, index_dir, embedder).published  # nothing changed
    # Only the merged segment and the segments of the kept older version remain.
    kept = {s for v in (index_dir / VERSIONS).iterdir() for s in segment_ids(index_dir, v.name)}
    assert {p.name for p in (index_dir / SEGMENTS).iterdir()} == kept


def test_merge_choice_rewrites_the_small_segments_and_those_with_many_deletions(monkeypatch):
    monkeypatch.setattr(build_module, "MAX_SEGMENTS", 8)
    large = {"id": "large", "passages": 1_000_000, "live": 1_000_000}
    small = [{"id": f"s{i}", "passages": 10 + i, "live": 10 + i} for i in range(8)]
    choice = build_module.merge_choice
    assert choice([large, *small[:7]], adding=False) == set()  # eight: not too many
    # A ninth on the way: the five smallest go, so four remain with the new one.
    assert choice([large, *small[:7]], adding=True) == {f"s{i}" for i in range(5)}
    assert choice([*small[:8], large], adding=True) == {f"s{i}" for i in range(6)}
    # A segment with more than MAX_DELETED_SHARE of its rows deleted is rewritten alone.
    worn = {**large, "live": 700_000}
    assert choice([worn, *small[:3]], adding=False) == {"large"}
    assert choice([{**large, "live": 800_000}, *small[:3]], adding=True) == set()


def test_adding_reports_never_rewrites_the_large_segment(docs_copy, index_copy, embedder):
    """Past MAX_SEGMENTS the smallest segments merge (build.merge_choice): adding reports
    one at a time never rewrites the segment that holds the corpus."""
    (large,) = segment_ids(index_copy)
    marks = file_marks(index_copy / SEGMENTS / large)
    maximum = build_module.MAX_SEGMENTS
    build_module.MAX_SEGMENTS = 4
    merges = 0
    try:
        for i in range(6):
            text = f"Báo cáo bổ sung số {i}\n\nChi bộ số {i} kết nạp {i + 3} đảng viên mới."
            (docs_copy / f"bổ sung {i}.txt").write_text(text, encoding="utf-8")
            summary = build_index(docs_copy, index_copy, embedder)
            assert summary.published and summary.added == 1 and summary.segments <= 4
            assert segment_ids(index_copy)[0] == large
            merges += summary.merged
    finally:
        build_module.MAX_SEGMENTS = maximum
    assert merges >= 1
    assert file_marks(index_copy / SEGMENTS / large) == marks  # not rewritten, not touched
    index = open_index(index_copy, embedder.id)
    assert len(index.documents) == 5 + 6
    assert sum(len(s.passages) for s in index.segments) == len(index.passages)


def test_many_tombstones_merge(docs_copy, index_copy, embedder):
    for report in sorted(docs_copy.iterdir())[:3]:
        report.unlink()
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.merged and summary.segments == 1 and summary.documents == 2
    index = open_index(index_copy, embedder.id)
    assert index.segments[0].deleted is None and len(index.documents) == 2


def test_a_damaged_segment_is_reported_and_the_service_falls_back(docs_copy, index_copy, embedder):
    old = current_version(index_copy)
    (docs_copy / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    build_index(docs_copy, index_copy, embedder)
    new = current_version(index_copy)
    segment = segment_ids(index_copy)[-1]
    path = index_copy / SEGMENTS / segment / "bm25_postings.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))

    report = inspect_index(index_copy)
    assert not report.ok and report.serving == old
    assert [p.file for p in report.versions[new]] == [f"{SEGMENTS}/{segment}/bm25_postings.npy"]
    assert not report.versions[old]
    service = QAService(index_copy, embedder)
    try:
        assert service.index.version == old and service.status()["status"] == "degraded"
        assert service.ask(QUESTIONS[0]).found
    finally:
        service.close()
    # The next build does not trust the damaged version: it reads everything into one segment.
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.published and summary.segments == 1 and inspect_index(index_copy).ok


def test_pruning_keeps_every_segment_a_kept_or_leased_version_lists(
    docs_copy, index_copy, embedder
):
    first = current_version(index_copy)
    lease = hold_version(index_copy, first)  # a server still serving the first version
    try:
        names = []
        for number in range(3):
            name = f"2030-01-0{number + 1}-bao-cao-{number}.txt"
            (docs_copy / name).write_text(
                NEW_REPORT.replace("Tràng Duệ", f"Số {number}"), encoding="utf-8"
            )
            names.append(name)
            build_index(docs_copy, index_copy, embedder)
        for name in names:
            (docs_copy / name).unlink()
        build_index(docs_copy, index_copy, embedder)
        versions = sorted(p.name for p in (index_copy / VERSIONS).iterdir())
        assert first in versions  # leased: not pruned
        for version in versions:  # every version left is whole and can be opened
            assert open_index_version_ok(index_copy, version, embedder)
        listed = {s for v in versions for s in segment_ids(index_copy, v)}
        assert {p.name for p in (index_copy / SEGMENTS).iterdir()} == listed
    finally:
        lease.close()
    build_index(docs_copy, index_copy, embedder)  # nothing to do, but nothing breaks
    (docs_copy / "2030-02-01-x.txt").write_text(NEW_REPORT, encoding="utf-8")
    build_index(docs_copy, index_copy, embedder)
    versions = sorted(p.name for p in (index_copy / VERSIONS).iterdir())
    assert first not in versions and len(versions) == 2
    listed = {s for v in versions for s in segment_ids(index_copy, v)}
    assert {p.name for p in (index_copy / SEGMENTS).iterdir()} == listed


def open_index_version_ok(index_dir: Path, version: str, embedder) -> bool:
    from qabot.index.loaded import open_version

    index = open_version(index_dir, version, embedder.id)
    return len(index.passages) > 0


def test_version_manifest_lists_segments_and_global_statistics(reports_index):
    manifest = read_manifest(reports_index, current_version(reports_index))
    assert manifest["format"] == 3
    (segment,) = version_segments(manifest)
    assert segment["deleted"] == [] and segment["passages"] == manifest["passages"]
    assert manifest["bm25"]["n_docs"] == manifest["passages"]
    record = json.loads((reports_index / SEGMENTS / segment["id"] / "segment.json").read_text())
    assert "meta.sqlite" in record["files"] and (reports_index / CURRENT).exists()
    assert np.isfinite(manifest["bm25"]["max_term_weight"])


def test_a_hot_reload_shares_the_unchanged_segments(writable_service, embedder):
    service = writable_service
    old = service.index
    (service.docs_dir / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    build_index(service.docs_dir, service.index_dir, embedder)
    assert service.reload()
    new = service.index
    assert new.version != old.version and len(new.segments) == 2
    shared, added = new.segments
    assert shared.passages is old.segments[0].passages  # one open store, one map
    assert shared.vectors is old.segments[0].vectors and shared.bm25 is old.segments[0].bm25
    assert added.start == len(shared.passages) == len(old.passages)
    answer = service.ask(NEW_REPORT_QUESTION)
    assert answer.found and answer.passages[0].doc_id == NEW_REPORT_NAME
    assert old.passages[0] == new.passages[0]  # the old index still answers its requests


def test_a_segment_hashed_whole_is_not_hashed_again_until_written(index_copy, monkeypatch):
    from qabot.index import layout

    version = current_version(index_copy)
    (segment,) = segment_ids(index_copy)
    assert layout.verify_version(index_copy, version, stamps=True) == []  # hashes, stamps
    hashed, digest = [], layout.file_digest
    monkeypatch.setattr(layout, "file_digest", lambda path: hashed.append(path) or digest(path))
    assert layout.verify_version(index_copy, version, stamps=True) == []
    assert not [p for p in hashed if SEGMENTS in p.parts]  # unchanged since: sizes only
    assert layout.verify_version(index_copy, version) == []
    assert [p for p in hashed if SEGMENTS in p.parts]  # verify always hashes
    monkeypatch.undo()
    path = index_copy / SEGMENTS / segment / "sentence_spans.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new bytes: the stamp no longer matches
    problems = layout.verify_version(index_copy, version, stamps=True)
    assert [(p.file, p.kind) for p in problems] == [
        (f"{SEGMENTS}/{segment}/sentence_spans.npy", "checksum")
    ]


def test_weighed_postings_are_remembered_for_a_bounded_number_of_terms(
    one_by_one, embedder, monkeypatch
):
    monkeypatch.setattr(bm25_module, "POSTINGS_KEPT", 3)
    grown = open_index(one_by_one, embedder.id)
    terms = ["đảng", "viên", "kết", "nạp", "hải", "phòng"]
    ids = grown.bm25.term_ids(terms)
    first = grown.bm25.postings(ids[0])
    assert grown.bm25.postings(ids[0]) is first  # remembered
    with pytest.raises(ValueError):
        first[1][0] = 0.0  # shared between questions: read-only
    for term_id in ids[1:]:
        grown.bm25.postings(term_id)
    assert len(grown.bm25._weighed) == 3
    again = grown.bm25.postings(ids[0])  # forgotten, weighed again alike
    assert again is not first
    assert np.array_equal(again[0], first[0]) and np.array_equal(again[1], first[1])


@pytest.mark.parametrize("cache_size", [0, 4096])
def test_passages_read_together_equal_passages_read_one_by_one(one_by_one, cache_size):
    """PassageStore.many (one query for the rows not kept) and SegmentedPassages.many (per
    segment) give what indexing row by row gives, in the order asked, duplicates included."""
    index = open_index(one_by_one)
    assert len(index.segments) == 5
    for segment in index.segments:
        segment.passages.cache_size = cache_size
    rng = np.random.default_rng(cache_size)
    rows = rng.integers(-len(index.passages), len(index.passages), 60).tolist()
    rows += rows[:5]  # asked twice
    expected = [index.passages[r] for r in rows]
    assert index.passages.many(rows) == expected
    assert index.passages.many(rows[::-1]) == expected[::-1]  # kept ones, now cached
    single = index.segments[0].passages
    local = [r % len(single) for r in rows]
    assert single.many(local) == [single[r] for r in local]
    assert index.passages.many([]) == []
    with pytest.raises(IndexError):
        index.passages.many([len(index.passages)])


def test_best_sentence_cosines_of_many_passages_are_each_passages_own(one_by_one, embedder):
    index = open_index(one_by_one, embedder.id)
    assert len(index.segments) == 5
    query = embedder.embed_queries(["Đảng bộ có bao nhiêu đảng viên?"])[0]
    rows = np.random.default_rng(4).permutation(len(index.passages))[:120].tolist()
    got = index.best_sentence_cosines(rows, query)
    segments_seen = {index.segment_of(r).start for r in rows}
    assert len(segments_seen) >= 3
    for row, value in zip(rows, got, strict=True):
        _, vectors = index.sentences_of(row)
        if len(vectors):
            assert abs(float((vectors @ query).max()) - float(value)) < 1e-5
        else:
            assert np.isnan(value)


def test_the_vectors_of_many_rows_are_each_rows_own(one_by_one, embedder):
    """The ranker reads its candidates' vectors in one call per segment, in any row order."""
    index = open_index(one_by_one, embedder.id)
    shuffled = np.random.default_rng(5).permutation(len(index.passages))
    rows = np.concatenate([shuffled, shuffled[:7]])  # a row asked twice is given twice
    got = index.vectors.reconstruct_batch(rows)
    assert len({index.segment_of(int(r)).start for r in rows}) >= 3
    assert got.shape == (len(rows), index.vectors.d)
    for row, vector in zip(rows.tolist(), got, strict=True):
        assert np.array_equal(vector, index.vectors.reconstruct(row))
