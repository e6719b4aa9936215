"""Hybrid retrieval: BM25 and dense candidates, features, a linear reranker, confidence.

The reranker's weights were fitted by bench/fit_ranker.py on the UIT train files only (a
logistic regression over the features below, regularisation chosen by held-out folds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from qabot.embedding import Embedder
from qabot.index import LoadedIndex
from qabot.ingest import CAPTION
from qabot.passages import Passage
from qabot.query import DATE, NUMBER, ORGANISATION, PERSON, PLACE, Query, analyse

CANDIDATES = 40  # from each retriever
VARIANT_WEIGHT = 0.5  # abbreviation variants count half as much as the words typed

FEATURES = (
    "dense",  # cosine similarity of question and passage
    "dense_gap",  # cosine minus the best cosine among candidates
    "bm25",  # BM25 divided by the best BM25 among candidates
    "coverage",  # idf share of the question's syllables found in the passage
    "bigram_coverage",  # the same for syllable bigrams
    "answer_type",  # the passage holds the kind of thing asked for (number, date, name)
    "caption",  # the passage is a photo caption
    "rrf",  # reciprocal-rank fusion of both retrievers
)
# Logistic-regression weights, in FEATURES order, then the intercept.
WEIGHTS = np.array([8.0, 10.0, 2.0, 3.0, 1.5, 0.4, -2.0, 30.0], dtype=np.float32)
INTERCEPT = -12.0
# found = true when the best passage's probability is at least this (see bench/abstention).
FOUND_THRESHOLD = 0.5


@dataclass(frozen=True)
class Hit:
    row: int
    passage: Passage
    score: float  # probability that the passage answers, 0..1
    features: tuple[float, ...]


@dataclass(frozen=True)
class SearchResult:
    query: Query
    hits: list[Hit]

    @property
    def confidence(self) -> float:
        return self.hits[0].score if self.hits else 0.0

    @property
    def found(self) -> bool:
        return self.confidence >= FOUND_THRESHOLD


_NUMBER = re.compile(r"\d")
_DATE = re.compile(
    r"\b\d{1,2}[/-]\d{1,2}(?:[/-]\d{2,4})?\b|\b(?:ngày|tháng|năm|quý)\s+\d|\b(?:19|20)\d{2}\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-ZĐ][\w]*(?:\s+[A-ZĐ][\w]*){1,3}\b")
_ORGANISATION = re.compile(r"\b(?:Ban|Văn phòng|Sở|Bộ|Ủy ban|Hội|Đoàn|Phòng|Trung tâm|Công ty)\s+[A-ZĐ]")


def answer_type_match(kind: str | None, text: str) -> float:
    if kind == NUMBER:
        return float(bool(_NUMBER.search(text)))
    if kind == DATE:
        return float(bool(_DATE.search(text)))
    if kind in (PERSON, PLACE):
        return float(bool(_NAME.search(text)))
    if kind == ORGANISATION:
        return float(bool(_ORGANISATION.search(text)))
    return 0.0


def _rank_of(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(scores))
    return ranks[rows]


class Searcher:
    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self._max_idf = float(index.bm25.idf.max()) if len(index.bm25.idf) else 1.0

    def _coverage(self, terms: tuple[str, ...]) -> tuple[np.ndarray, float]:
        """Matched idf per passage, and the question's total idf (unknown terms count fully)."""
        bm25 = self.index.bm25
        ids = bm25.term_ids(list(terms))
        known = set(ids)
        total = sum(float(bm25.idf[i]) for i in known)
        total += self._max_idf * sum(1 for t in dict.fromkeys(terms) if t not in bm25.vocabulary)
        return bm25.matched_idf(ids), max(total, 1e-9)

    def search(self, question: str, top_k: int = 5) -> SearchResult:
        query = analyse(question)
        n = len(self.index.passages)
        if n == 0:
            return SearchResult(query, [])
        bm25 = self.index.bm25
        term_ids = bm25.term_ids(list(query.terms))
        variant_ids = [t for t in bm25.term_ids(list(query.variant_terms)) if t not in term_ids]
        lexical = bm25.scores(
            term_ids + variant_ids, [1.0] * len(term_ids) + [VARIANT_WEIGHT] * len(variant_ids)
        )

        query_vector = self.embedder.embed_queries([question])
        k = min(n, CANDIDATES)
        dense_scores, dense_rows = self.index.vectors.search(query_vector, k)
        dense_rows = dense_rows[0][dense_rows[0] >= 0]
        lexical_rows = np.argsort(-lexical, kind="stable")[:k]
        rows = np.array(sorted(set(dense_rows.tolist()) | set(lexical_rows.tolist())), dtype=np.int64)
        rows = rows[(lexical[rows] > 0) | np.isin(rows, dense_rows)]

        vectors = np.stack([self.index.vectors.reconstruct(int(r)) for r in rows])
        dense = vectors @ query_vector[0]
        unigrams = tuple(t for t in query.terms if "_" not in t)
        bigrams = tuple(t for t in query.terms if "_" in t)
        uni_matched, uni_total = self._coverage(unigrams)
        bi_matched, bi_total = self._coverage(bigrams)
        best_lexical = float(lexical[rows].max()) or 1.0
        # Dense ranks among all passages: a passage outside the dense top-k ranks after it.
        dense_rank = np.full(len(rows), k, dtype=np.int64)
        position = {int(r): i for i, r in enumerate(dense_rows)}
        for i, r in enumerate(rows):
            dense_rank[i] = position.get(int(r), k)
        lexical_rank = _rank_of(lexical, rows)

        features = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
        features[:, 0] = dense
        features[:, 1] = dense - dense.max()
        features[:, 2] = lexical[rows] / best_lexical
        features[:, 3] = uni_matched[rows] / uni_total
        features[:, 4] = bi_matched[rows] / bi_total if bigrams else 0.0
        passages = [self.index.passages[int(r)] for r in rows]
        features[:, 5] = [answer_type_match(query.answer_type, p.text) for p in passages]
        features[:, 6] = [float(p.kind == CAPTION) for p in passages]
        features[:, 7] = 1.0 / (60 + dense_rank) + 1.0 / (60 + lexical_rank)

        logits = features @ WEIGHTS + INTERCEPT
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        # Captions never outrank body text: they sort after every body passage.
        order = sorted(
            range(len(rows)), key=lambda i: (passages[i].kind == CAPTION, -probabilities[i])
        )[:top_k]
        hits = [
            Hit(
                row=int(rows[i]),
                passage=passages[i],
                score=float(probabilities[i]),
                features=tuple(float(x) for x in features[i]),
            )
            for i in order
        ]
        return SearchResult(query, hits)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
