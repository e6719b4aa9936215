"""Index mechanics that keep a query's cost independent of the corpus size: touched-postings
scoring, ranks without a full sort, sentence offsets, bounded caches; and that they give what
the dense computations gave."""

import json
from collections import Counter

import numpy as np
import pytest

from qabot.index import bm25 as bm25_module
from qabot.index import meta, open_index
from qabot.index.bm25 import BM25Index, Scratch, Vocabulary, distinct_rows, ranks, top_rows
from qabot.index.loaded import sentence_offsets
from qabot.index.meta import PassageStore
from qabot.passages import Passage
from qabot.terms import index_terms

TEXTS = [
    "Năm nay được kết nạp thêm đảng viên mới.",
    "Chi bộ được kết nạp quần chúng ưu tú.",
    "Hội nghị sơ kết công tác quý III.",
    "Công đoàn tổ chức hội thao cho công nhân.",
    "Đảng viên mới được kết nạp tại chi bộ.",
    "Hội nghị sơ kết công tác quý III.",  # the same text twice: tied scores
    "Ban quản lý khu kinh tế họp sơ kết.",
    "Không có từ nào chung.",
]


def dense_scores(index: BM25Index, term_ids: list[int], weights: list[float]) -> np.ndarray:
    """The computation search did before: every passage's score in an n-sized array."""
    out = np.zeros(index.n_docs, dtype=np.float32)
    for i, t in enumerate(term_ids):
        lo, hi = index.indptr[t], index.indptr[t + 1]
        out[index.postings[lo:hi]] += index.weights[lo:hi] * weights[i]
    return out


def test_touched_scores_equal_the_dense_computation_to_the_last_bit():
    index = BM25Index.build(TEXTS)
    term_ids = index.term_ids(["kết", "nạp", "sơ", "hội_nghị", "~dang_vien", "chi"])
    weights = [1.0, 1.0, 0.5, 1.0, 0.4, 1.0]
    touched = index.touched(term_ids, weights)
    rows, scores = touched.rows, touched.scores
    dense = dense_scores(index, term_ids, weights)
    assert list(rows) == sorted(set(np.flatnonzero(dense).tolist()))
    assert np.array_equal(scores, dense[rows])  # bit for bit
    assert np.array_equal(index.scores(term_ids, weights), dense)


def test_top_rows_and_ranks_equal_a_stable_sort_of_every_score():
    index = BM25Index.build(TEXTS)
    term_ids = index.term_ids(["sơ", "kết", "công_tác"])
    touched = index.touched(term_ids, [1.0] * len(term_ids))
    rows, scores = touched.rows, touched.scores
    dense = dense_scores(index, term_ids, [1.0] * len(term_ids))
    order = np.argsort(-dense, kind="stable")
    rank = np.empty(len(dense), dtype=np.int64)
    rank[order] = np.arange(len(dense))
    assert dense[2] == dense[5] > 0  # a tie, broken by row
    for k in (1, 2, 3, 5, 8):
        expected = [int(r) for r in order[:k] if dense[r] > 0]
        assert top_rows(rows, scores, k).tolist() == expected
    every = np.arange(len(TEXTS))
    assert ranks(rows, scores, every).tolist() == rank.tolist()  # unscored rows included


def test_ranks_with_many_ties_and_unscored_rows():
    rng = np.random.default_rng(3)
    n = 500
    dense = rng.choice(np.array([0, 0, 0, 1.5, 2.5, 3.0], dtype=np.float32), size=n)
    rows = np.flatnonzero(dense).astype(np.int64)
    scores = dense[rows]
    order = np.argsort(-dense, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    wanted = rng.choice(n, size=60, replace=False)
    assert ranks(rows, scores, wanted).tolist() == rank[wanted].tolist()
    assert top_rows(rows, scores, 40).tolist() == order[:40].tolist()


@pytest.mark.parametrize("n_docs", [1_000, 3_000_000])  # rows below and past 2 ** 16
@pytest.mark.parametrize("size", [0, 1, 40, 700, 5_000, 70_000])
def test_distinct_rows_are_the_sorted_unique_rows(n_docs, size):
    rng = np.random.default_rng(size)
    read = rng.integers(0, n_docs, size).astype(np.int32)
    slots = Scratch(n_docs).slots()
    for _ in range(2):  # the second query starts from what the first left behind
        rows, where = distinct_rows(read, slots)
        expected, inverse = np.unique(read, return_inverse=True)
        assert rows.dtype == read.dtype
        assert rows.tolist() == expected.tolist()
        assert where.tolist() == inverse.tolist()
        read = rng.integers(0, n_docs, size).astype(np.int32)


@pytest.mark.parametrize("counted", [0, 1_000])  # sort the scores; count row by row
def test_ranks_with_the_leading_rows_given(monkeypatch, counted):
    monkeypatch.setattr(bm25_module, "COUNTED_RANKS", counted)
    rng = np.random.default_rng(5)
    n = 2_000
    dense = rng.choice(np.array([0, 0, 0.5, 1.5, 2.5, 3.0], dtype=np.float32), size=n)
    dense[rng.choice(n, 300)] = rng.random(300).astype(np.float32)
    rows = np.flatnonzero(dense).astype(np.int32)
    scores = dense[rows]
    order = np.argsort(-dense, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    leading = top_rows(rows, scores, 40)
    wanted = np.concatenate([leading[::3], rng.choice(n, 45, replace=False)])
    assert ranks(rows, scores, wanted, leading).tolist() == rank[wanted].tolist()
    assert ranks(rows, scores, wanted).tolist() == rank[wanted].tolist()


def test_a_common_term_reads_at_most_max_postings_its_best_first(monkeypatch):
    texts = [f"báo cáo số {i} " + "báo " * (i % 7) for i in range(60)]
    index = BM25Index.build(texts)
    term = index.vocabulary["báo"]
    lo, hi = index.indptr[term], index.indptr[term + 1]
    assert hi - lo == 60
    weights = index.weights[lo:hi]
    assert np.all(np.diff(weights) <= 0)  # impact-ordered: highest weight first
    monkeypatch.setattr(bm25_module, "MAX_POSTINGS", 10)
    touched = index.touched([term])
    rows, scores = touched.rows, touched.scores
    assert len(rows) == 10
    dense = dense_scores(index, [term], [1.0])
    best = np.argsort(-dense, kind="stable")[:10]
    assert sorted(best.tolist()) == rows.tolist()  # the ten best passages are kept
    assert np.array_equal(scores, dense[rows])


def test_matched_weight_of_touched_rows_equals_the_dense_computation():
    index = BM25Index.build(TEXTS)
    terms = ["kết", "nạp", "không_có_đâu", "kết", "sơ_kết"]
    touched = index.touched(index.term_ids([*terms, "chi", "hội_nghị"]))
    expected = np.zeros(len(TEXTS), dtype=np.float32)
    for t in index.term_ids(terms):
        lo, hi = index.indptr[t], index.indptr[t + 1]
        expected[index.postings[lo:hi]] += index.term_weight[t]
    every = np.arange(len(TEXTS))
    assert np.array_equal(touched.at(every, touched.matched_weight(terms)), expected)
    assert touched.at(every, touched.scores)[7] == 0  # an untouched row


def test_sentence_offsets_find_each_passages_sentences(reports_index, embedder):
    index = open_index(reports_index, embedder.id)
    spans = np.asarray(index.sentence_spans)
    offsets = sentence_offsets(spans, len(index.passages))
    assert offsets[0] == 0 and offsets[-1] == len(spans)
    for row in range(len(index.passages)):
        lo, hi = (
            np.searchsorted(spans[:, 0], row, "left"),
            np.searchsorted(spans[:, 0], row, "right"),
        )
        got_spans, got_vectors = index.sentences_of(row)
        assert (offsets[row], offsets[row + 1]) == (lo, hi)
        assert np.array_equal(got_spans, spans[lo:hi, 1:])
        assert got_vectors.shape == (hi - lo, index.sentence_vectors.shape[1])


def test_caches_are_bounded(service):
    cache = service.index.cache
    for lru in (cache.sentence_terms, cache.header_terms):
        assert lru.size <= 20_000
    service.ask("Có bao nhiêu đảng viên mới được kết nạp?")
    assert 0 < len(cache.sentence_terms) <= cache.sentence_terms.size


@pytest.mark.parametrize("k", [0, 1])
def test_top_rows_of_nothing(k):
    assert top_rows(np.zeros(0, np.int64), np.zeros(0, np.float32), k).tolist() == []


def test_a_build_in_chunks_equals_a_build_in_one():
    texts = TEXTS * 3 + ["", "Báo cáo tổng kết năm 2024 của Đảng ủy Khu kinh tế."]
    whole = BM25Index.build(texts, chunk=10_000)
    chunked = BM25Index.build(texts, chunk=2)
    assert whole.vocabulary == chunked.vocabulary and whole.n_docs == chunked.n_docs == 26
    for name in ("idf", "prior", "indptr", "postings", "weights"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


def test_a_build_in_ranges_equals_the_term_by_term_weights(monkeypatch):
    """The weights of the streaming build equal the formula applied term by term (the build
    before it), to the last bit, however the final pass splits the terms into ranges."""
    monkeypatch.setattr(bm25_module, "POSTINGS_PER_RANGE", 7)
    index = BM25Index.build(TEXTS, chunk=3)
    counts = [Counter(index_terms(t)) for t in TEXTS]
    lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
    avg = float(lengths.mean())
    n = len(TEXTS)
    for term, t in index.vocabulary.items():
        rows = np.array([r for r, c in enumerate(counts) if term in c], dtype=np.int32)
        tf = np.array([counts[r][term] for r in rows], dtype=np.float32)
        idf = np.float32(np.log(1.0 + (n - len(rows) + 0.5) / (len(rows) + 0.5)))
        norm = bm25_module.K1 * (1.0 - bm25_module.B + bm25_module.B * lengths[rows] / avg)
        weight = idf * index.prior[t] * tf * (bm25_module.K1 + 1.0) / (tf + norm)
        lo, hi = index.indptr[t], index.indptr[t + 1]
        assert index.idf[t] == idf
        got = dict(zip(index.postings[lo:hi].tolist(), index.weights[lo:hi].tolist(), strict=True))
        assert got == dict(zip(rows.tolist(), weight.tolist(), strict=True)), term


def test_an_empty_corpus_builds():
    index = BM25Index.build([])
    assert index.n_docs == 0 and len(index.postings) == 0
    touched = index.touched([])
    assert len(touched.rows) == 0
    assert top_rows(touched.rows, touched.scores, 40).tolist() == []
    assert ranks(touched.rows, touched.scores, np.array([0, 3])).tolist() == [0, 3]


def test_a_question_without_index_terms_is_answered_not_found(service):
    answer = service.ask("?!")
    assert not answer.found


def test_a_version_keeps_postings_memory_mapped(reports_index, embedder):
    index = open_index(reports_index, embedder.id)
    # Plain ndarray views of the mappings (slicing a memmap costs a Python call a slice).
    for array in (index.bm25.postings, index.bm25.weights):
        assert type(array) is np.ndarray and isinstance(array.base, np.memmap)
    assert not list(index.path.glob(".bm25-parts*"))  # the build's spill folder is gone


def test_lazily_read_passages_equal_the_eagerly_read_ones(reports_index, embedder):
    index = open_index(reports_index, embedder.id)
    store = index.passages
    assert isinstance(store, PassageStore) and store.cached() == 0  # nothing read on open
    db = index.connect()
    try:
        eager = meta.read_passages(db)
    finally:
        db.close()
    assert len(store) == len(eager) > 50
    assert list(store) == eager  # streamed in row order
    assert [store[i] for i in range(len(eager))] == eager
    assert store[-1] == eager[-1] and store[3:6] == eager[3:6]
    with pytest.raises(IndexError):
        store[len(eager)]


def test_the_passage_cache_is_bounded(tmp_path):
    path = tmp_path / "meta.sqlite"
    document = meta.DocumentRows(
        meta.DocumentInfo("a.txt", "A", None, "a.txt", "h", 1, 30),
        [meta.ParagraphRecord("a.txt", 1, "body", "x")],
        [Passage("a.txt", i, 1, 0, 1, "body", f"đoạn {i}", "A") for i in range(30)],
    )
    meta.write(path, [document])
    store = PassageStore(path, cache_size=8)
    assert [p.text for p in store[::-1]][:2] == ["đoạn 29", "đoạn 28"]
    assert store.cached() == 8 and store[0].ordinal == 0
    store.close()


def test_the_vocabulary_table_equals_a_dict(reports_index, embedder):
    index = open_index(reports_index, embedder.id)
    vocabulary = index.bm25.vocabulary
    assert isinstance(vocabulary, Vocabulary)
    terms = json.loads(json.dumps(list(vocabulary)))  # every term, in byte order
    assert terms == sorted(terms, key=lambda t: t.encode("utf-8"))
    ids = [vocabulary[t] for t in terms]
    assert sorted(ids) == list(range(len(terms))) == list(range(len(index.bm25.idf)))
    assert "đảng_viên" in vocabulary and "~dang_vien" in vocabulary
    for missing in ("", "zzzz", "đảng_viênx", "\uffff"):
        assert missing not in vocabulary and vocabulary.get(missing) is None
    # The same terms and ids as a build held in memory.
    texts = [p.indexed_text for p in index.passages]
    in_memory = BM25Index.build(texts)
    assert dict(vocabulary.items()) == in_memory.vocabulary
    assert np.array_equal(index.bm25.weights, in_memory.weights)


def test_a_build_that_changes_nothing_leaves_no_staging_folder(docs_copy, index_copy, embedder):
    from qabot.index import build_index
    from qabot.index.layout import VERSIONS, current_version

    before = current_version(index_copy)
    summary = build_index(docs_copy, index_copy, embedder)
    assert not summary.published and summary.passages > 0 and summary.documents == 5
    assert current_version(index_copy) == before
    assert not [p for p in (index_copy / VERSIONS).iterdir() if p.name.startswith(".")]


def test_metadata_written_in_batches_equals_one_write(reports_index, embedder, tmp_path):
    index = open_index(reports_index, embedder.id)
    db = index.connect()
    try:
        documents = [meta.read_document_rows(db, d.doc_id) for d in index.documents]
    finally:
        db.close()
    writer = meta.MetaWriter(tmp_path / "meta.sqlite")
    writer.COMMIT_ROWS = 3
    for document in documents:
        writer.add(document)
    writer.close()
    store = PassageStore(tmp_path / "meta.sqlite")
    assert list(store) == [p for d in documents for p in d.passages]
    store.close()


def test_a_segments_documents_are_read_once_until_its_file_changes(index_copy):
    """meta.segment_documents remembers a segment's documents by its file's stat stamp (a
    published segment never changes); a file written since is read again."""
    import sqlite3

    from qabot.index.layout import SEGMENTS

    (path,) = (index_copy / SEGMENTS).glob("*/meta.sqlite")
    first = meta.segment_documents(path)
    assert first == meta.segment_documents(path) and first is not meta.segment_documents(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE documents SET title = 'Đổi tên' WHERE doc_id = ?", (first[0].doc_id,))
    db.commit()
    db.close()
    again = meta.segment_documents(path)
    assert [d.title for d in again if d.doc_id == first[0].doc_id] == ["Đổi tên"]
