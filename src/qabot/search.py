"""Hybrid retrieval: BM25 and dense candidates, features, a linear reranker, confidence.

The ranker and the confidence model are linear models read from the embedder's model file
(qabot.fitted; fitted by bench/fit_ranker.py on the UIT train files only): the ranker with a
listwise (softmax) loss over each question's candidates, the confidence model as a logistic
regression separating questions the corpus answers from questions asked against a corpus of
another domain. Features are computed by name; a model file names the features it was
fitted on, and a mismatch is an error, not a silent misreading.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import pairwise
from types import MappingProxyType

import numpy as np

from qabot.embedding import Embedder
from qabot.fitted import FittedModels, for_embedder
from qabot.focus import focus_match, question_focus
from qabot.index import LoadedIndex
from qabot.index.bm25 import Touched, ranks, top_rows
from qabot.index.loaded import LruCache
from qabot.index.vectors import search_threads
from qabot.ingest import CAPTION
from qabot.passages import Passage
from qabot.period import (
    Months,
    QuestionTime,
    overlaps,
    passage_periods,
    question_time,
    report_covers,
    report_month,
)
from qabot.query import DATE, NUMBER, PERSON, Query, analyse, interpret, with_context
from qabot.terms import FOLDED_PREFIX
from qabot.text import token_matches, tokens

CANDIDATES = 40  # from each retriever
VARIANT_WEIGHT = 0.5  # abbreviation variants count half as much as the words typed
# What a follow-up inherits from the conversation without naming it (its context) counts
# less than the words it asks, and only in BM25: the short thing asked must outweigh the
# inherited subject and period, or a report's introduction, which names them all, wins.
# Held-out conversations: hit@1 0.60 with the context at full weight, 0.80 at 0.3 to 0.5.
CONTEXT_WEIGHT = 0.4
RRF_K = 60
# Threads that score questions' postings beside their ANN search (Searcher._retrieve).
# More than the questions answered at once would idle; fewer make a busy server's
# questions wait for one (two cores answer about two at once).
LEXICAL_WORKERS = 8

BASE_FEATURES = (
    "dense",  # exp((cosine - best cosine) / dense_scale): question vs passage, near the top
    "sentence_dense",  # the same for the passage's best sentence
    "bm25",  # BM25 divided by the best BM25 among candidates
    "bigram_coverage",  # weight share (idf x prior) of the question's bigrams in the passage
    "sentence_coverage",  # the same for syllables in the best sentence or the header
    "title_coverage",  # the same for syllables in the title and date
    "rrf_dense",  # RRF_K / (RRF_K + rank) in the dense ranking
    "rrf_bm25",  # the same in the BM25 ranking
)
# What a report's structure says about a passage (issue 14): which part of the report it
# is, the report's subject, and time. Computed from the candidate rows alone
# (Searcher.structure_columns), so a fit can add them to cached BASE_FEATURES.
STRUCTURE_FEATURES = (
    "caption",  # 1 for a photo caption: a caption costs a fitted amount, it is not excluded
    "subject_coverage",  # weight share of the question's syllables in passage + its subject
    "name_coverage",  # weight share of the bigrams of the question's names in the same
    "period_text",  # 1 when the passage names a period overlapping the question's period
    "period_report",  # 1 when the passage's report is dated in (or just after) that period
    "period_conflict",  # 1 when the passage names periods and none overlaps the asked one
    "recency",  # no period asked: the report's date among the candidates' reports on the
    # question's subject (0 oldest, 1 latest; 0 for reports on another subject)
    "recency_now",  # the same when the question asks about the present ("hiện nay")
    "focus",  # the best sentence's qabot.focus.focus_match: the asked kind of thing (a
    # number for "bao nhiêu đảng viên") within a few words of the question's focus words
)
FEATURES = BASE_FEATURES + STRUCTURE_FEATURES
# The features that read a candidate's sentences (tokenising them the first time a passage
# is a candidate): most of a question's cost when the corpus is large and few candidates
# have been read before. Each lies in [0, 1]; Searcher.search reads them only for the
# candidates that can still reach the top. (The periods a passage names are read for every
# candidate: with period_conflict's negative weight in the first score, fewer candidates
# reach the top than with the periods read late, and reading them costs less.)
TEXT_FEATURES = ("sentence_coverage", "subject_coverage", "name_coverage", "focus")
# Candidates whose sentences are read before the bound is checked again, after the first
# top_k. Each check scores the candidates' matrix once more (tens of microseconds); each
# candidate read unneeded costs more: at a million passages the bench's first questions
# read 14.0 candidates with 2 against 16.3 with 8, and reading took 1.1 ms against 1.6-2.0.
READ_BATCH = 2
BOUND_MARGIN = 1e-4  # float32 scores: a bound this close to the top is not trusted
TIME_FEATURES = tuple(f for f in STRUCTURE_FEATURES if f.startswith(("period_", "recency")))
# The kinds "focus" ranks by. "đâu" and "nào" also ask for a reason or a source ("dựa vào
# đâu", "căn cứ nào"), so a place or an organisation beside the focus words says little
# about a passage: with them, held-out UIT hit@1 lost two such questions (0.9151 against
# 0.9159 without them; generated questions 0.9541 against 0.9587).
RANKING_FOCUS_KINDS = (NUMBER, PERSON, DATE)
# Cosines enter through a bounded, relative transform (its scale is in the model file): raw
# cosine gaps are much wider between topics than between the passages of one report, and a
# linear weight fitted on the former would drown lexical evidence on the latter.

# Absolute measures of a candidate, for the confidence model (features are relative).
SIGNALS = ("cosine", "sentence_cosine", "coverage")
# Confidence: logistic regression over CONFIDENCE_FEATURES of the best candidate.
CONFIDENCE_FEATURES = ("score", *SIGNALS, "sentence_coverage")

# Without a confidence model fitted for the embedder (qabot calibrate), found is decided by
# the lexical side alone, which means the same whatever the embedder: the best passage must
# be among the first RANK_ONLY_TOP of the BM25 ranking and hold at least RANK_ONLY_COVERAGE
# of the question's word weight (idf x prior).
RANK_ONLY_TOP = 3
RANK_ONLY_COVERAGE = 0.5


@dataclass(frozen=True)
class Hit:
    row: int
    passage: Passage
    score: float  # ranker score (a logit; higher is better)


@dataclass(frozen=True)
class Candidates:
    query: Query
    query_vector: np.ndarray  # (dim,)
    rows: np.ndarray
    passages: list[Passage]
    features: np.ndarray  # (len(rows), len(FEATURES))
    signals: np.ndarray  # (len(rows), len(SIGNALS))


class _FocusSentences:
    """Per candidate, the sentences that may hold the answer focus (None: any), from its
    sentence tokens: kept as arrays, listed only for the candidates a search reads."""

    def __init__(self, candidates: int) -> None:
        self._holding: list[np.ndarray] = []  # per TokenMatches group: per sentence, bool
        self._group = np.full(candidates, -1, dtype=np.int64)
        self._first = np.zeros(candidates, dtype=np.int64)
        self._last = np.zeros(candidates, dtype=np.int64)

    def add(
        self, positions: np.ndarray, holding: np.ndarray, passage_sentences: np.ndarray
    ) -> None:
        """The candidates at ``positions``, whose sentences are passage_sentences[k] up to
        passage_sentences[k + 1] in ``holding``."""
        self._group[positions] = len(self._holding)
        self._first[positions] = passage_sentences[:-1]
        self._last[positions] = passage_sentences[1:]
        self._holding.append(holding)

    def of(self, candidate: int) -> list[int] | None:
        group = int(self._group[candidate])
        if group < 0:
            return None
        holding = self._holding[group][self._first[candidate] : self._last[candidate]]
        return np.flatnonzero(holding).tolist()


@dataclass(frozen=True)
class _Columns:
    """The candidates of a question and their feature columns by name (filled in as they
    are computed)."""

    query: Query
    query_vector: np.ndarray  # (dim,)
    rows: np.ndarray
    passages: list[Passage]
    columns: dict[str, np.ndarray]
    signals: np.ndarray  # (len(rows), len(SIGNALS))
    # Per TEXT_FEATURE, an upper bound of what reading a candidate's sentences adds to
    # its column: of its value, from what the postings and the documents' data say, or 0
    # where the column holds the exact value already (Searcher.search).
    bounds: dict[str, np.ndarray]
    # Per candidate: True when its sentence tokens gave its coverage TEXT_FEATURES exactly
    # (only focus is left to read), and the sentences that may hold the focus (None: any).
    exact: np.ndarray
    focus_sentences: _FocusSentences

    def features(self) -> np.ndarray:
        return np.column_stack([self.columns[name] for name in FEATURES]).astype(np.float32)

    def candidates(self) -> Candidates:
        return Candidates(
            self.query, self.query_vector, self.rows, self.passages, self.features(), self.signals
        )


@dataclass(frozen=True)
class _Retrieval:
    query: Query
    query_vector: np.ndarray  # (1, dim)
    rows: np.ndarray
    touched: Touched  # the passages the query's terms touch, and their BM25 scores
    dense_rows: list[int]
    lexical_rows: np.ndarray  # the k best BM25 rows, best first
    k: int


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lexical_pool() -> ThreadPoolExecutor:
    """The workers of every Searcher's lexical side: a reload makes a new Searcher, and its
    questions keep the same threads."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(LEXICAL_WORKERS, thread_name_prefix="qabot-lexical")
        return _pool


@dataclass(frozen=True)
class _Subjects:
    """A question's candidates' reports (``at``: doc id -> row) and which of the question's
    words and names each report's subject holds, and which words its context header (title
    and date, the context of every passage of it) holds."""

    at: dict[str, int]
    of_candidate: np.ndarray  # per candidate, its report's row
    words: np.ndarray  # (reports, question words) bool
    names: np.ndarray  # (reports, question names) bool
    headers: np.ndarray  # (reports, question words) bool


@dataclass(frozen=True)
class SearchResult:
    query: Query
    query_vector: np.ndarray
    hits: list[Hit]
    confidence: float  # probability that the corpus answers the question
    found: bool
    candidates: int = 0  # how many passages were ranked
    read: int = 0  # of them, how many had their sentences read (Searcher.search)


def confidence_features(
    scores: np.ndarray, features: np.ndarray, signals: np.ndarray, best: int
) -> np.ndarray:
    """CONFIDENCE_FEATURES of the best candidate: its ranker score, and how well it matches
    in absolute terms."""
    sentence_coverage = features[best, FEATURES.index("sentence_coverage")]
    return np.array([scores[best], *signals[best], sentence_coverage], dtype=np.float32)


def found_by_rank(features: np.ndarray, signals: np.ndarray, best: int) -> bool:
    """The rank-only rule for found (see RANK_ONLY_TOP), for embedders without a confidence
    model: BM25 puts the best passage near the top, and it holds most of the question's
    words."""
    bm25_rank = RRF_K / features[best, FEATURES.index("rrf_bm25")] - RRF_K
    coverage = signals[best, SIGNALS.index("coverage")]
    return bool(bm25_rank < RANK_ONLY_TOP + 0.5 and coverage >= RANK_ONLY_COVERAGE)


def question_names(question: str) -> tuple[str, ...]:
    """The syllables of capitalised words after the first one: the names a question asks
    about ("Ai là Bí thư Đảng ủy Khối doanh nghiệp thành phố Hải Phòng?")."""
    words = [m.group() for m in token_matches(question)]
    return tuple(
        dict.fromkeys(t for w in words[1:] if w[0].isupper() and not w.isdigit() for t in tokens(w))
    )


def time_columns(
    asked: QuestionTime,
    named: np.ndarray,
    overlapping: np.ndarray,
    recency_months: Sequence[int | None],
    report_months: Sequence[int | None],
) -> dict[str, np.ndarray]:
    """The time features of candidates, from the question's time, whether each passage
    names a period and whether one of them overlaps the asked period (both read only when
    the question names one), and its report's month (None: undated). ``recency_months``
    holds the months of the reports on the question's subject and None for the others,
    which get no recency."""
    n = len(report_months)
    columns = {name: np.zeros(n) for name in TIME_FEATURES}
    if asked.period is not None:
        covered = np.array([report_covers(asked.period, m) for m in report_months], dtype=bool)
        columns["period_text"] = overlapping.astype(float)
        columns["period_report"] = covered.astype(float)
        columns["period_conflict"] = (named & ~overlapping & ~covered).astype(float)
        return columns
    dated = [m for m in recency_months if m is not None]
    if dated and max(dated) > min(dated):
        low, spread = min(dated), max(dated) - min(dated)
        recency = np.array([0.0 if m is None else (m - low) / spread for m in recency_months])
        columns["recency"] = recency
        if asked.now:
            columns["recency_now"] = recency
    return columns


def _halves(bigram: str) -> tuple[str, str]:
    """ "~ban_quản" -> ("~ban", "~quản"): a bigram term's syllables in the unigram form."""
    prefix = FOLDED_PREFIX if bigram.startswith(FOLDED_PREFIX) else ""
    first, second = bigram.removeprefix(prefix).split("_", 1)
    return prefix + first, prefix + second


def _weighted_sums(weights: Sequence[float], held: np.ndarray) -> np.ndarray:
    """Per row of ``held`` ((rows, terms) bool), the summed weights of the terms it holds,
    added term by term in order as Python's sum over the terms adds them: the same bits."""
    sums = np.zeros(len(held))
    for j, w in enumerate(weights):
        sums += w * held[:, j]
    return sums


class Searcher:
    """Ranks an index's passages for a question. ``models`` defaults to the embedder's model
    file (qabot.fitted.for_embedder)."""

    def __init__(
        self, index: LoadedIndex, embedder: Embedder, models: FittedModels | None = None
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.models = models or for_embedder(embedder.id, index.index_dir)
        self.models.ranker.check(FEATURES, "ranker")
        if self.models.confidence is not None:
            self.models.confidence.model.check(CONFIDENCE_FEATURES, "confidence")
        bm25 = index.bm25
        self._max_weight = float(bm25.term_weight.max()) if len(bm25.term_weight) else 1.0
        self._periods: LruCache[int, tuple[Months, ...]] = LruCache(50_000)
        self._months: LruCache[str, int | None] = LruCache(50_000)  # per report
        self._names: LruCache[tuple[str, bool, tuple[str, ...]], Mapping[str, float]] = LruCache(
            256
        )
        # A term's weight is a binary search of the memory-mapped term table; the ranking
        # and structure features ask for the same terms, and questions repeat them.
        self._weights: LruCache[str, float] = LruCache(100_000)

    def _weight(self, term: str) -> float:
        """A term's weight (idf times prior); a term the corpus never uses counts as much as
        the rarest one."""
        return self._weights.get(term, lambda: self._lookup_weight(term))

    def _lookup_weight(self, term: str) -> float:
        term_id = self.index.bm25.vocabulary.get(term)
        if term_id is None:
            return self._max_weight
        return float(self.index.bm25.term_weight[term_id])

    def _retrieve(self, question: str, context: Sequence[str]) -> _Retrieval | None:
        """The analysed question and the union of the BM25 and dense candidates (None for
        an empty index)."""
        n = len(self.index.passages)
        if n == 0:
            return None
        restorer = self.index.restorer
        asked = interpret(question, restorer)
        inherited = interpret("; ".join(context), restorer) if context else None
        # The dense side reads the whole self-contained question: embedding the asked words
        # alone (or the mean of both) lost dev hit@1 (0.84 to 0.86 against 0.89).
        understood = with_context(asked[1], [inherited[1]]) if inherited else asked[1]
        query_vector = self.embedder.embed_queries([understood])
        k = min(n, CANDIDATES)
        # A worker analyses the rest of the question and scores its postings while this
        # thread runs the ANN search, which releases the GIL at once, so the worker starts
        # without waiting for it and a question waits for the longer of the two. (The other
        # way round, the worker waited about half a millisecond for this thread's GIL.)
        lexical = _lexical_pool().submit(
            self._lexical_rows, question, context, asked, inherited, understood, k
        )
        try:
            dense_rows = self._nearest_rows(query_vector, k)
            # Read while the worker finishes: the passages store keeps them for
            # _first_columns, as the worker does with the lexical candidates.
            self.index.passages.many(dense_rows)
        finally:
            query, touched, lexical_rows = lexical.result()
        rows = np.array(sorted(set(dense_rows) | set(lexical_rows.tolist())), dtype=np.int64)
        return _Retrieval(query, query_vector, rows, touched, dense_rows, lexical_rows, k)

    def _lexical_rows(
        self,
        question: str,
        context: Sequence[str],
        asked: tuple[str, str],
        inherited: tuple[str, str] | None,
        understood: str,
        k: int,
    ) -> tuple[Query, Touched, np.ndarray]:
        """The analysed question (``asked``, ``inherited``: qabot.query.interpret of the
        question and of its context), the passages its terms touch and the k best BM25
        rows, best first (their passages read into the passages store)."""
        query = analyse(question, self.index.restorer, asked)
        bm25 = self.index.bm25
        term_ids = bm25.term_ids(list(query.terms))
        variant_ids = [t for t in bm25.term_ids(list(query.variant_terms)) if t not in term_ids]
        weights = [1.0] * len(term_ids) + [VARIANT_WEIGHT] * len(variant_ids)
        context_ids = []
        if inherited is not None:
            context_query = analyse("; ".join(context), self.index.restorer, inherited)
            query = replace(query, interpreted=understood)
            inherited_terms = [*context_query.terms, *context_query.variant_terms]
            context_ids = [
                t
                for t in bm25.term_ids(inherited_terms)
                if t not in term_ids and t not in variant_ids
            ]
            weights += [CONTEXT_WEIGHT] * len(context_ids)
        # Only the passages the query terms touch are scored (qabot.index.bm25).
        touched = bm25.touched(term_ids + variant_ids + context_ids, weights)
        lexical_rows = top_rows(touched.rows, touched.scores, k)
        # Read here, beside the ANN search and its passages (SQLite releases the GIL too):
        # the passages store keeps them for _first_columns.
        self.index.passages.many(lexical_rows.tolist())
        return query, touched, lexical_rows

    def _nearest_rows(self, query_vector: np.ndarray, k: int) -> list[int]:
        """The rows of the k passages nearest the question's vector, nearest first."""
        search_threads()  # per thread: a worker may not have searched before
        _, found_rows = self.index.vectors.search(query_vector, k)
        return [int(r) for r in found_rows[0] if r >= 0]

    def candidate_rows(
        self, question: str, context: Sequence[str] = ()
    ) -> tuple[Query, np.ndarray]:
        """The analysed question and its candidate rows, without their features (for a fit
        that adds features to cached ones: bench/fit_ranker.py)."""
        retrieved = self._retrieve(question, context)
        if retrieved is None:
            return analyse(question, self.index.restorer), np.zeros(0, np.int64)
        return retrieved.query, retrieved.rows

    def candidates(self, question: str, context: Sequence[str] = ()) -> Candidates:
        """Every candidate with every feature (fits, calibration; search computes the
        TEXT_FEATURES only where they can change the top)."""
        first = self._first_columns(question, context)
        if first is None:
            return self._no_candidates(question)
        self._read(first, np.arange(len(first.rows)))
        return first.candidates()

    def _no_candidates(self, question: str) -> Candidates:
        return Candidates(
            analyse(question, self.index.restorer),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            [],
            np.zeros((0, len(FEATURES)), dtype=np.float32),
            np.zeros((0, len(SIGNALS)), dtype=np.float32),
        )

    def _first_columns(self, question: str, context: Sequence[str]) -> _Columns | None:
        """The candidates, their signals and every feature but TEXT_FEATURES (left 0):
        what the postings, the vectors and the documents' data say, without reading the
        candidates' sentences. None for an empty index."""
        retrieved = self._retrieve(question, context)
        if retrieved is None:
            return None
        query, query_vector, rows = retrieved.query, retrieved.query_vector, retrieved.rows
        touched, dense_rows, k = retrieved.touched, retrieved.dense_rows, retrieved.k
        passages = self.index.passages.many(rows.tolist())

        vectors = self.index.vectors.reconstruct_batch(rows)
        dense = vectors @ query_vector[0]
        dense_rank = {r: i for i, r in enumerate(dense_rows)}
        dense_ranks = np.array([dense_rank.get(r, k) for r in rows.tolist()], dtype=np.int64)
        lexical_ranks = ranks(touched.rows, touched.scores, rows, retrieved.lexical_rows)
        lexical = touched.at(rows, touched.scores)

        unigrams = [t for t in query.terms if "_" not in t]
        bigrams = [t for t in query.terms if "_" in t]
        uni_weight = {t: self._weight(t) for t in unigrams}
        bi_weight = {t: self._weight(t) for t in bigrams}
        uni_total = sum(uni_weight.values()) or 1.0
        bi_total = sum(bi_weight.values()) or 1.0
        uni_matched = touched.at(rows, touched.matched_weight(unigrams))
        bi_matched = touched.at(rows, touched.matched_weight(bigrams))
        best_lexical = float(lexical.max()) or 1.0

        best_sentence = self.index.best_sentence_cosines(rows.tolist(), query_vector[0])
        # A passage without sentences (a caption too short to split) is its own sentence.
        sentence_dense = np.where(np.isnan(best_sentence), dense, best_sentence).astype(np.float32)
        n_rows = len(rows)
        columns = {name: np.zeros(n_rows) for name in TEXT_FEATURES}
        columns.update(
            {
                "dense": np.exp((dense - dense.max()) / self.models.dense_scale),
                "sentence_dense": np.exp(
                    (sentence_dense - sentence_dense.max()) / self.models.dense_scale
                ),
                "bm25": lexical / best_lexical,
                "bigram_coverage": bi_matched / bi_total if bigrams else np.zeros(n_rows),
                "rrf_dense": RRF_K / (RRF_K + dense_ranks),
                "rrf_bm25": RRF_K / (RRF_K + lexical_ranks),
            }
        )
        subjects = self._subjects(query, rows, passages)
        # The share of the question's syllable weight a candidate's header holds (the same
        # words, weights and order as uni_weight: the same bits as summing over it).
        title = _weighted_sums(list(uni_weight.values()), subjects.headers) / uni_total
        columns["title_coverage"] = title[subjects.of_candidate]
        columns.update(self._document_columns(query, rows, passages, subjects))
        signals = np.column_stack([dense, sentence_dense, uni_matched / uni_total])
        # Where the sentence tokens give the coverage features, they are exact (nothing left
        # to add by reading) and the focus has its own bound; elsewhere the postings bound all.
        exact, values, focus_bound, focus_sentences, held_coverage = self._token_columns(
            query, rows, passages, subjects
        )
        if touched.cut_weight(unigrams) > 0:
            # A common word's postings were cut (MAX_POSTINGS): a candidate may hold it unseen,
            # and the coverage signal (the confidence model's, fitted where no postings are
            # cut) would fall with the corpus's size. The sentence tokens say it exactly.
            signals[exact, SIGNALS.index("coverage")] = held_coverage[exact]
        bounds = {name: np.zeros(n_rows) for name in TEXT_FEATURES}
        for name, value in values.items():
            columns[name][exact] = value[exact]
        bounds["focus"][exact] = focus_bound[exact]
        other = np.flatnonzero(~exact)
        if len(other):
            from_postings = self._text_bounds(
                query, touched, rows[other], [passages[i] for i in other], uni_matched[other]
            )
            for name, bound in from_postings.items():
                bounds[name][other] = bound
        return _Columns(
            query,
            query_vector[0],
            rows,
            passages,
            columns,
            signals.astype(np.float32),
            bounds,
            exact,
            focus_sentences,
        )

    def _text_bounds(
        self,
        query: Query,
        touched: Touched,
        rows: np.ndarray,
        passages: Sequence[Passage],
        uni_matched: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Upper bounds of the TEXT_FEATURES without reading sentences. A passage is
        indexed with its header, so the question's words in any of its sentences or its
        header weigh at most what its postings matched (plus the weight of terms whose
        postings were cut); its report's subject adds its own words. A shade above the
        exact sums (float32 postings against Python sums) and at most 1."""
        unigrams = [t for t in query.terms if "_" not in t]
        weight = {t: self._weight(t) for t in unigrams}
        total = sum(weight.values()) or 1.0
        words = uni_matched + touched.cut_weight(unigrams)
        name_weight = self._name_weights(query)
        name_total = sum(name_weight.values()) or 1.0
        names = touched.at(rows, touched.matched_weight(list(name_weight)))
        names = names + touched.cut_weight(list(name_weight))
        from_subject = np.zeros(len(rows))
        from_subject_names = np.zeros(len(rows))
        for i, passage in enumerate(passages):
            subject_words, subject_bigrams = self.index.subject_terms(passage.doc_id, query.folded)
            from_subject[i] = sum(v for t, v in weight.items() if t in subject_words)
            from_subject_names[i] = sum(v for t, v in name_weight.items() if t in subject_bigrams)

        def bounded(values: np.ndarray) -> np.ndarray:
            return np.minimum(1.0, values * (1 + 1e-5) + 1e-6)

        return {
            "sentence_coverage": bounded(words / total),
            "subject_coverage": bounded((words + from_subject) / total),
            "name_coverage": bounded((names + from_subject_names) / name_total)
            if name_weight
            else np.zeros(len(rows)),
            "focus": self._focus_bound(query, touched, rows),
        }

    def _focus_bound(self, query: Query, touched: Touched, rows: np.ndarray) -> np.ndarray:
        """An upper bound of focus_column: 0 without a focus word in the passage, and
        (1 / focus length)^2 without two adjacent ones (a run of one word at most)."""
        focus = question_focus(query.interpreted, query.folded, query.answer_type)
        if focus.kind not in RANKING_FOCUS_KINDS or not focus.words:
            return np.zeros(len(rows))
        if not all(w.isalpha() for w in focus.words):  # written otherwise in the index
            return np.ones(len(rows))
        prefix = FOLDED_PREFIX if query.folded else ""
        words = [prefix + w for w in focus.words]
        pairs = [f"{a}_{b.removeprefix(prefix)}" for a, b in pairwise(words)]
        single = (1.0 / len(words)) ** 2
        bound = np.where(touched.may_hold(rows, words), single, 0.0)
        if pairs:
            bound[touched.may_hold(rows, pairs)] = 1.0
        return bound

    def _subjects(self, query: Query, rows: np.ndarray, passages: Sequence[Passage]) -> _Subjects:
        """The candidates' reports' subjects against the question's words (syllables) and
        names (bigrams): from the subject tokens a segment stored, or from the subject's
        text where it has none; and the reports' headers against its words."""
        first_passage: dict[str, int] = {}  # one report's passages share its header
        for i, passage in enumerate(passages):
            first_passage.setdefault(passage.doc_id, i)
        doc_ids = list(first_passage)
        words = list(dict.fromkeys(t for t in query.terms if "_" not in t))
        names = list(self._name_weights(query))
        word_held = np.zeros((len(doc_ids), len(words)), dtype=bool)
        name_held = np.zeros((len(doc_ids), len(names)), dtype=bool)
        halves = [_halves(t) for t in names]
        terms = tuple(dict.fromkeys([*words, *(h for pair in halves for h in pair)]))
        column = {t: j for j, t in enumerate(terms)}
        word_columns = [column[w] for w in words]
        pairs = [(column[a], column[b]) for a, b in halves]
        read = np.zeros(len(doc_ids), dtype=bool)
        row_of = rows.tolist()
        in_headers = [
            self.index.header_terms(row_of[i], query.folded, passages[i])
            for i in first_passage.values()  # in doc_ids' order
        ]
        # One array made at once: a row assigned per report cost more than its set tests.
        headers = np.array(
            [[t in in_header for t in words] for in_header in in_headers], dtype=bool
        ).reshape(len(doc_ids), len(words))
        for group in self.index.subject_matches(doc_ids, terms, query.folded):
            read[group.positions] = True
            word_held[group.positions] = group.sentence_presence()[:, word_columns]
            name_held[group.positions] = group.adjacent(pairs)
        for i in np.flatnonzero(~read).tolist():
            subject_words, subject_bigrams = self.index.subject_terms(doc_ids[i], query.folded)
            word_held[i] = [t in subject_words for t in words]
            name_held[i] = [t in subject_bigrams for t in names]
        at = {d: i for i, d in enumerate(doc_ids)}
        of_candidate = np.array([at[p.doc_id] for p in passages], dtype=np.int64)
        return _Subjects(at, of_candidate, word_held, name_held, headers)

    def _token_columns(
        self,
        query: Query,
        rows: np.ndarray,
        passages: Sequence[Passage],
        subjects: _Subjects | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, _FocusSentences, np.ndarray]:
        """From the candidates' sentence tokens (qabot.index.sentence_tokens), without
        reading their text: which candidates have them, their exact sentence, subject and
        name coverage, an upper bound of their focus, the sentences that may hold it, and
        the share of the question's word weight the passage holds (text or header: what
        its postings say, when none was cut).
        Sums run in the order _text_columns and _coverage_columns add them: the same bits."""
        n = len(rows)
        exact = np.zeros(n, dtype=bool)
        columns = {name: np.zeros(n) for name in TEXT_FEATURES if name != "focus"}
        held_coverage = np.zeros(n)
        focus_bound = np.ones(n)
        focus_sentences = _FocusSentences(n)
        weight = {t: self._weight(t) for t in query.terms if "_" not in t}
        total = sum(weight.values()) or 1.0
        name_weight = self._name_weights(query)
        name_total = sum(name_weight.values()) or 1.0
        names = [_halves(t) for t in name_weight]
        focus = question_focus(query.interpreted, query.folded, query.answer_type)
        ranked = focus.kind in RANKING_FOCUS_KINDS and bool(focus.words)
        prefix = FOLDED_PREFIX if query.folded else ""
        # Focus words holding digits are written otherwise in the index ("1.062" is "1062").
        focus_words = (
            [prefix + w for w in focus.words]
            if ranked and all(w.isalpha() for w in focus.words)
            else []
        )
        terms = tuple(dict.fromkeys([*weight, *focus_words, *(h for pair in names for h in pair)]))
        column = {t: j for j, t in enumerate(terms)}
        word_columns = [column[t] for t in weight]
        weights = list(weight.values())
        name_pairs = [(column[a], column[b]) for a, b in names]
        focus_columns = [column[w] for w in focus_words]
        focus_pairs = [(column[a], column[b]) for a, b in pairwise(focus_words)]
        single = (1.0 / len(focus_words)) ** 2 if focus_words else 0.0
        if not ranked:
            focus_bound[:] = 0.0  # focus_column is 0 for every candidate
        subjects = subjects or self._subjects(query, rows, passages)
        for group in self.index.sentence_matches(rows, terms, query.folded):
            at = group.positions
            exact[at] = True
            presence = group.sentence_presence()
            documents = subjects.of_candidate[at]
            header = subjects.headers[documents]  # the words the question and header share
            subject_words = subjects.words[documents]
            subject_names = subjects.names[documents]
            # Per sentence, the question's words it holds or its passage's header holds.
            counts = np.diff(group.passage_sentences)
            held = presence[:, word_columns] | np.repeat(header, counts, axis=0)
            sums = _weighted_sums(weights, held)
            columns["sentence_coverage"][at] = group.per_passage_max(sums) / total
            in_passage = group.per_passage_any(held) | header
            held_coverage[at] = _weighted_sums(weights, in_passage) / total
            anywhere = in_passage | subject_words
            columns["subject_coverage"][at] = _weighted_sums(weights, anywhere) / total
            if name_weight:
                named = group.adjacent(name_pairs) | subject_names
                columns["name_coverage"][at] = (
                    _weighted_sums(list(name_weight.values()), named) / name_total
                )
            if focus_words:
                # focus_match needs a run of focus words: none in a sentence without one,
                # and a run of one word at most without two adjacent ones.
                holding = presence[:, focus_columns].any(axis=1)
                paired = group.adjacent(focus_pairs).any(axis=1)
                focus_bound[at] = np.where(
                    group.per_passage_any(holding), np.where(paired, 1.0, single), 0.0
                )
                focus_sentences.add(at, holding, group.passage_sentences)
        return exact, columns, focus_bound, focus_sentences, held_coverage

    def _read(self, first: _Columns, which: np.ndarray) -> None:
        """Fill the TEXT_FEATURES of the candidates at ``which`` in first.columns: only the
        focus where the sentence tokens gave the rest (first.exact), all four elsewhere."""
        exact = first.exact[which]
        tokened, other = which[exact], which[~exact]
        if len(tokened):
            first.columns["focus"][tokened] = self.focus_column(
                first.query,
                first.rows[tokened],
                [first.passages[i] for i in tokened.tolist()],
                [first.focus_sentences.of(i) for i in tokened.tolist()],
            )
        if len(other):
            values = self._text_columns(
                first.query, first.rows[other], [first.passages[i] for i in other.tolist()]
            )
            for name in TEXT_FEATURES:
                first.columns[name][other] = values[name]

    def _text_columns(
        self, query: Query, rows: np.ndarray, passages: Sequence[Passage]
    ) -> dict[str, np.ndarray]:
        """TEXT_FEATURES of the given candidates: what their sentences say."""
        weight = {t: self._weight(t) for t in query.terms if "_" not in t}
        total = sum(weight.values()) or 1.0
        asked = frozenset(weight)
        coverage = np.zeros(len(rows))
        for i, row in enumerate(rows.tolist()):
            # The header (title, date) is the context of every sentence of the passage.
            in_header = asked & self.index.header_terms(row, query.folded, passages[i])
            sums: dict[frozenset[str], float] = {}  # most sentences match alike, or nothing
            for words, _ in self.index.sentence_terms(row, query.folded):
                found = (asked & words) | in_header
                if found not in sums:
                    sums[found] = sum(v for t, v in weight.items() if t in found)
            coverage[i] = max(sums.values(), default=0.0) / total
        columns = {"sentence_coverage": coverage}
        columns.update(self._coverage_columns(query, rows, passages))
        columns["focus"] = self.focus_column(query, rows, passages)
        return columns

    def passage_periods(self, row: int) -> tuple[Months, ...]:
        """The periods a passage names; a period without its year ("9 tháng đầu năm") takes
        the year of its report."""

        def make() -> tuple[Months, ...]:
            stored = self.index.stored_periods(row)
            if stored is not None:
                return stored
            passage = self.index.passages[row]
            return passage_periods(passage.text, self._document_date(passage.doc_id))

        return self._periods.get(row, make)

    def _document_date(self, doc_id: str) -> str | None:
        info = self.index.document(doc_id)
        return info.date if info is not None else None

    def structure_columns(
        self, query: Query, rows: np.ndarray, passages: Sequence[Passage] | None = None
    ) -> dict[str, np.ndarray]:
        """STRUCTURE_FEATURES of the candidate rows for an analysed question (``passages``:
        theirs, when the caller has read them already)."""
        if passages is None:
            passages = [self.index.passages[int(r)] for r in rows]
        columns = self._document_columns(query, rows, passages)
        columns.update(self._coverage_columns(query, rows, passages))
        columns["focus"] = self.focus_column(query, rows, passages)
        return columns

    def _name_weights(self, query: Query) -> Mapping[str, float]:
        """The question's name bigrams and their weights. Names are matched as phrases
        ("chế_xuất", "hải_phòng"), since the syllables of organisation names ("ban", "khu",
        "thành", "phố") are everywhere. Remembered for the last questions: each feature
        that reads names asks for them."""
        return self._names.get(
            (query.interpreted, query.folded, query.terms), lambda: self._find_names(query)
        )

    def _find_names(self, query: Query) -> Mapping[str, float]:
        prefix = FOLDED_PREFIX if query.folded else ""
        names = {prefix + t for t in question_names(query.interpreted)}
        return MappingProxyType(
            {
                t: self._weight(t)
                for t in query.terms
                if "_" in t and any(part in names for part in _halves(t))
            }
        )

    def _coverage_columns(
        self, query: Query, rows: np.ndarray, passages: Sequence[Passage]
    ) -> dict[str, np.ndarray]:
        """subject_coverage and name_coverage: what the passage's words and its report's
        subject cover of the question's words and names (reads the passage's sentences)."""
        n = len(rows)
        columns = {"subject_coverage": np.zeros(n), "name_coverage": np.zeros(n)}
        weight = {t: self._weight(t) for t in query.terms if "_" not in t}
        total = sum(weight.values()) or 1.0
        name_weight = self._name_weights(query)
        name_total = sum(name_weight.values()) or 1.0
        for i, row in enumerate(rows.tolist()):
            subject_words, subject_bigrams = self.index.subject_terms(
                passages[i].doc_id, query.folded
            )
            words, bigrams = self.index.passage_terms(row, query.folded)
            columns["subject_coverage"][i] = (
                sum(v for t, v in weight.items() if t in words or t in subject_words) / total
            )
            if name_weight:
                columns["name_coverage"][i] = (
                    sum(v for t, v in name_weight.items() if t in bigrams or t in subject_bigrams)
                    / name_total
                )
        return columns

    def _document_columns(
        self,
        query: Query,
        rows: np.ndarray,
        passages: Sequence[Passage],
        subjects: _Subjects | None = None,
    ) -> dict[str, np.ndarray]:
        """The STRUCTURE_FEATURES that the passage's kind, its report and the periods it
        names decide: caption and the TIME_FEATURES."""
        n = len(rows)
        columns: dict[str, np.ndarray] = {
            "caption": np.array([float(p.kind == CAPTION) for p in passages]),
        }
        name_weight = self._name_weights(query)
        name_total = sum(name_weight.values()) or 1.0
        subject_match: dict[str, float] = {}
        if name_weight:
            subjects = subjects or self._subjects(query, rows, passages)
            sums = _weighted_sums(list(name_weight.values()), subjects.names) / name_total
            subject_match = dict(zip(subjects.at, sums.tolist(), strict=True))
        # Reports on the question's subject: those whose subject names it best. Recency
        # ranks only among them (a newer report on another organisation is not newer news).
        best_match = max(subject_match.values(), default=0.0)
        on_subject = [subject_match.get(p.doc_id, 0.0) >= best_match - 1e-9 for p in passages]
        asked = question_time(query.interpreted)
        report_months = [self._report_month(p.doc_id) for p in passages]
        named = overlapping = np.zeros(n, dtype=bool)
        if asked.period is not None:  # only then are the passages' periods compared
            stored, named, overlapping = self.index.period_matches(rows, asked.period)
            for i in np.flatnonzero(~stored).tolist():
                periods = self.passage_periods(int(rows[i]))
                named[i] = bool(periods)
                overlapping[i] = any(overlaps(p, asked.period) for p in periods)
        columns.update(
            time_columns(
                asked,
                named,
                overlapping,
                [m if same else None for m, same in zip(report_months, on_subject, strict=True)],
                report_months,
            )
        )
        return columns

    def _report_month(self, doc_id: str) -> int | None:
        return self._months.get(doc_id, lambda: report_month(self._document_date(doc_id)))

    def focus_column(
        self,
        query: Query,
        rows: np.ndarray,
        passages: Sequence[Passage],
        sentences: Sequence[list[int] | None] | None = None,
    ) -> np.ndarray:
        """Per candidate, its best sentence's focus_match (0 when the question asks for no
        number, person or date, or names no focus words). ``sentences``: per candidate,
        the only sentences that may hold the focus, when its sentence tokens said so."""
        column = np.zeros(len(rows))
        focus = question_focus(query.interpreted, query.folded, query.answer_type)
        if focus.kind not in RANKING_FOCUS_KINDS or not focus.words:
            return column
        # A sentence without any focus word has no run of them, hence no match: its
        # syllables (cached per passage) say so without reading it. Focus words holding
        # digits are written differently there ("1.062" is "1062"), so they rule out nothing.
        prefix = FOLDED_PREFIX if query.folded else ""
        asked = [prefix + w for w in focus.words]
        shortcut = all(w.isalpha() for w in focus.words)
        for i, row in enumerate(rows.tolist()):
            text = passages[i].text
            spans = self.index.sentence_spans_of(row)
            chosen = sentences[i] if sentences is not None else None
            if chosen is not None:
                column[i] = max(
                    (
                        focus_match(focus, text[int(spans[j, 0]) : int(spans[j, 1])], query.folded)
                        for j in chosen
                    ),
                    default=0.0,
                )
                continue
            terms = self.index.sentence_terms(row, query.folded)
            column[i] = max(
                (
                    focus_match(focus, text[s:e], query.folded)
                    for (s, e), (words, _) in zip(spans.tolist(), terms, strict=True)
                    if not shortcut or any(w in words for w in asked)
                ),
                default=0.0,
            )
        return column

    def search(self, question: str, top_k: int = 5, context: Sequence[str] = ()) -> SearchResult:
        """``context``: what a follow-up inherits from the conversation without naming it
        (qabot.conversation.Step.context); ``question`` is what it asks.

        The same ranking as scoring every candidate with every feature (``candidates``),
        without reading every candidate's sentences: a candidate's score without them plus
        their positive weights times their upper bounds bounds its score.
        Candidates are read best bound first, and reading stops when no bound left reaches
        the top_k-th score read (the bounds: Searcher._text_bounds). Sentences are
        most of a question's cost on a large corpus, where few candidates have been read
        before."""
        first = self._first_columns(question, context)
        if first is None or not len(first.rows):
            empty = self._no_candidates(question)
            return SearchResult(empty.query, empty.query_vector, [], 0.0, False)
        ranker = self.models.ranker
        n = len(first.rows)
        scores = ranker.score(first.features())
        # What reading a candidate's sentences can add to its score at most.
        reach = sum(
            max(float(ranker.weights[FEATURES.index(name)]), 0.0) * first.bounds[name]
            for name in TEXT_FEATURES
        )
        bounds = scores + reach
        by_bound = np.lexsort((np.arange(n), -bounds)).tolist()
        want = max(1, min(top_k, n))
        read: list[int] = []
        while len(read) < n:
            batch = np.array(by_bound[len(read) : len(read) + (READ_BATCH if read else want)])
            self._read(first, batch)
            read += batch.tolist()
            # Scored as one matrix, as ``candidates`` scores them: the same bits per row.
            scores = ranker.score(first.features())
            if len(read) >= want and len(read) < n:
                top = np.partition(scores[read], len(read) - want)[len(read) - want]
                # No candidate left can reach the top: the next one has the best bound.
                if bounds[by_bound[len(read)]] < top - BOUND_MARGIN:
                    break
        features = first.features()
        # A caption is ranked like any passage: the fitted "caption" weight is its cost.
        order = sorted(read, key=lambda i: (-scores[i], i))
        best = order[0]
        model = self.models.confidence
        if model is not None:
            confidence = model.probability(
                confidence_features(scores, features, first.signals, best)
            )
            found = bool(confidence >= model.threshold)
        else:
            found = found_by_rank(features, first.signals, best)
            # No probability without a fitted model: the word coverage stands in for it.
            confidence = float(first.signals[best, SIGNALS.index("coverage")]) * found
        passages = first.passages
        hits = [Hit(int(first.rows[i]), passages[i], float(scores[i])) for i in order[:top_k]]
        return SearchResult(first.query, first.query_vector, hits, confidence, found, n, len(read))
