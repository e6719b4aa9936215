"""Index mechanics that keep a query's cost independent of the corpus size: touched-postings
scoring, ranks without a full sort, sentence offsets, bounded caches; and that they give what
the dense computations gave."""

import numpy as np
import pytest

from qabot.index import bm25 as bm25_module
from qabot.index import open_index
from qabot.index.bm25 import BM25Index, ranks, top_rows
from qabot.index.loaded import sentence_offsets

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
