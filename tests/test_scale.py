"""Scale: a 20k-passage version of bench/scale.py, in process, the FAISS index chosen past
the exact-search limit, and a small bench/haystack.py (answers among generated passages).

The corpora are bench/scale.py's generated reports (the sample reports' sentences with
numbers, places and names varied) embedded by its hashing embedder, which needs no model, so
that 20,000 passages build in seconds. Per-question cost is what qabot adds to the question's
embedding; it must not grow with the corpus (issue 19): the median at 20k passages within
twice the median at 2k, both services asked the same questions in alternation in this
process, so that the machine's load falls on both alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest
from bench.haystack import asked_metrics, plant
from bench.scale import (
    CorpusGenerator,
    HashingEmbedder,
    _wait_for_peak,
    clustered_vectors,
    write_corpus,
)

from qabot.index import bm25, build_index, open_index
from qabot.index import vectors as vector_index
from qabot.search import FEATURES, SIGNALS, TEXT_FEATURES, Searcher
from qabot.service import QAService

from .conftest import DEV_SEEDS

SMALL, LARGE = 2_000, 20_000
QUESTIONS = 120


@pytest.fixture(scope="module")
def hashing() -> HashingEmbedder:
    return HashingEmbedder()


def _service(root, passages: int, embedder) -> QAService:
    docs, index = root / "docs", root / "index"
    write_corpus(docs, passages, seed=passages)
    summary = build_index(docs, index, embedder)
    assert abs(summary.passages - passages) <= passages // 50  # one passage a paragraph
    return QAService(index, embedder)


@pytest.fixture(scope="module")
def services(tmp_path_factory, hashing):
    small = _service(tmp_path_factory.mktemp("scale-small"), SMALL, hashing)
    large = _service(tmp_path_factory.mktemp("scale-large"), LARGE, hashing)
    yield small, large
    small.close()
    large.close()


def _own_ms(service: QAService, embedder, question: str) -> float:
    """Milliseconds of one answer minus its question's embedding (timed just before)."""
    started = time.perf_counter()
    embedder.embed_queries([question])
    embedding = time.perf_counter() - started
    started = time.perf_counter()
    answer = service.ask(question, 5)
    total = time.perf_counter() - started
    assert answer.passages  # a generated corpus always has something to cite
    return (total - embedding) * 1000


def test_per_question_cost_does_not_grow_with_the_corpus(services, hashing):
    small, large = services
    questions = CorpusGenerator().questions(QUESTIONS)
    # Warm-up with every question: what a first sight of a passage costs (its sentences'
    # terms, its row from SQLite) is per candidate, the same at any size, but a small corpus
    # sees its passages again sooner; the warm pass compares what a question costs apart
    # from that, which is where cost that grows with the corpus would show.
    for question in questions:
        _own_ms(small, hashing, question)
        _own_ms(large, hashing, question)
    small_ms, large_ms = [], []
    for question in questions:
        small_ms.append(_own_ms(small, hashing, question))
        large_ms.append(_own_ms(large, hashing, question))
    small_p50, large_p50 = statistics.median(small_ms), statistics.median(large_ms)
    assert large_p50 <= 2 * small_p50, (
        f"p50 minus embedding: {small_p50:.1f} ms at {SMALL} passages, "
        f"{large_p50:.1f} ms at {LARGE}"
    )


def _full_ranking(searcher: Searcher, question: str, top_k: int) -> list[tuple[int, float]]:
    """The top_k as scoring every candidate with every feature ranks them."""
    candidates = searcher.candidates(question)
    scores = searcher.models.ranker.score(candidates.features)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]
    return [(int(candidates.rows[i]), float(scores[i])) for i in order]


@pytest.mark.parametrize("max_postings", [bm25.MAX_POSTINGS, 50])
def test_search_reads_fewer_sentences_and_ranks_as_reading_every_candidate(
    services, hashing, monkeypatch, max_postings
):
    """Search reads a candidate's sentences only while its bound can reach the top; the
    top five, their scores and found must be what scoring every candidate gives, also when
    common terms' postings are cut (50 postings a term: most candidates hold words their
    postings did not show)."""
    monkeypatch.setattr(bm25, "MAX_POSTINGS", max_postings)
    _, large = services
    searcher = Searcher(open_index(large.index_dir), hashing)
    read = ranked = 0
    for question in CorpusGenerator(seed=3).questions(60):
        result = searcher.search(question, 5)
        assert [(h.row, h.score) for h in result.hits] == _full_ranking(searcher, question, 5)
        read += result.read
        ranked += result.candidates
        # Every bound holds: each feature read is at most what was assumed before reading.
        first = searcher._first_columns(question, ())
        features = searcher.candidates(question).features
        for name in TEXT_FEATURES:
            column = features[:, FEATURES.index(name)]
            assert np.all(column <= first.columns[name] + first.bounds[name] + 1e-6), name
    assert read < 0.6 * ranked, f"sentences read for {read} of {ranked} candidates"


def test_an_index_past_the_exact_limit_keeps_recall_at_40(tmp_path):
    # The limit is lowered so that a few thousand vectors are "past it": the same code path
    # as a corpus of hundreds of thousands, in a fraction of a second.
    data = clustered_vectors(30_000 + 200, dim=64, seed=5)
    vectors, held_out = data[:30_000].copy(), data[30_000:].copy()
    index = vector_index.build_vector_index(vectors, exact_limit=5_000)
    assert vector_index.describe(index).startswith("ivf")
    assert vector_index.build_vector_index(vectors[:5_000], exact_limit=5_000).ntotal == 5_000
    assert vector_index.describe(vector_index.build_vector_index(vectors[:5_000], 5_000)) == (
        "flat"
    )

    path = tmp_path / "vectors.faiss"
    vector_index.save_vector_index(index, path)
    loaded = vector_index.load_vector_index(path)
    assert vector_index.describe(loaded) == vector_index.describe(index)
    # Half-precision lists, held in memory (mapped lists searched at half the speed).
    assert isinstance(loaded, faiss.IndexIVFScalarQuantizer)
    assert loaded.sq.qtype == faiss.ScalarQuantizer.QT_fp16
    assert type(faiss.downcast_InvertedLists(loaded.invlists)) is faiss.ArrayInvertedLists
    assert path.stat().st_size < 30_000 * 64 * 3  # two bytes a dimension, and the lists' ids
    # Held-out points of the same clusters, and the calibration's kind of query.
    assert vector_index.recall(loaded, vectors, held_out) >= 0.98
    fresh = vector_index.sample_queries(vectors[::7].copy(), 200)
    assert vector_index.recall(loaded, vectors, fresh) >= 0.98
    # search.py reads a candidate's vector back by its row.
    assert np.allclose(loaded.reconstruct(12_345), vectors[12_345], atol=1e-3)
    # A handful of vectors past a limit of 0 still make an index (one list, every row found).
    tiny = vector_index.build_vector_index(vectors[:10], exact_limit=0)
    assert sorted(tiny.search(vectors[:1], 10)[1][0].tolist()) == list(range(10))
    # Exact search finds everything; so the recall measure can fail.
    flat = vector_index.build_vector_index(vectors[:2_000], exact_limit=10_000)
    assert vector_index.recall(flat, vectors[:2_000], held_out) == 1.0
    assert vector_index.recall(flat, vectors, held_out) < 0.5


def test_the_bench_reads_a_childs_own_peak_memory_not_its_parents():
    # A child forked from a large process: its ru_maxrss would report the parent's size.
    parent_ballast = np.ones(300 * 2**20 // 8)  # 300 MB touched in this process
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            "time.sleep(0.5)",
        ]
    )
    peak_kb, status = _wait_for_peak(child.pid)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    assert 80 <= peak_kb / 1024 < 200  # its 80 MB and Python, not this process's 300 MB
    assert parent_ballast[-1] == 1.0


def test_the_sample_reports_answer_among_thousands_of_passages_made_of_their_sentences(
    tmp_path, hashing
):
    """bench/haystack.py in small: the dev questions, typed with and without diacritics, find
    their passages when the sample reports are planted among 3,000 generated passages that
    recombine the reports' own sentences (every word of a question is in hundreds of them);
    without the reports, the same corpus answers few of them, so the hits are the
    reports'."""
    docs = tmp_path / "docs"
    write_corpus(docs, 3_000, seed=7)
    build_index(docs, tmp_path / "without", hashing)
    assert plant(docs) == 5
    build_index(docs, tmp_path / "with", hashing)
    found = {}
    for name in ("without", "with"):
        service = QAService(tmp_path / name, hashing)
        try:
            found[name] = asked_metrics(service, DEV_SEEDS)
        finally:
            service.close()
    for kind in ("accented", "folded"):
        assert found["with"][kind]["hit@5"] >= 0.8, (kind, found["with"][kind])
        assert found["with"][kind]["hit@1"] >= 0.7, (kind, found["with"][kind])
        assert found["with"][kind]["not_found"] == 1.0  # the unanswerable stay so
        assert found["without"][kind]["hit@5"] <= 0.5, (kind, found["without"][kind])


def test_the_coverage_signal_does_not_fall_when_common_words_postings_are_cut(
    services, hashing, monkeypatch
):
    """The confidence model reads how much of the question's word weight the best passage
    holds. Past MAX_POSTINGS a passage may hold a common word its postings did not show;
    the sentence tokens then say it exactly, so found does not fall with the corpus's size."""
    _, large = services
    searcher = Searcher(open_index(large.index_dir), hashing)
    coverage = SIGNALS.index("coverage")
    compared = 0
    for question in CorpusGenerator(seed=5).questions(20):
        # The reference reads every posting (its coverage is the postings' own, uncut).
        monkeypatch.setattr(bm25, "MAX_POSTINGS", LARGE)
        whole = searcher._first_columns(question, ())
        monkeypatch.setattr(bm25, "MAX_POSTINGS", 50)
        cut = searcher._first_columns(question, ())
        monkeypatch.undo()
        assert cut.exact.all()  # the generated corpus has sentence tokens for every row
        in_whole = {int(r): i for i, r in enumerate(whole.rows)}
        for i, row in enumerate(cut.rows.tolist()):
            if row in in_whole:
                expected = whole.signals[in_whole[row], coverage]
                assert cut.signals[i, coverage] == pytest.approx(expected, abs=1e-5)
                compared += 1
    assert compared > 100
