"""BM25 over the index terms of qabot.terms (syllables, bigrams, accent-folded twins).

Scores are precomputed per (term, passage) as in bm25s, so a query is a few array adds.
For ranking, a term's idf is multiplied by its general-language prior (qabot.lexicon): in a
corpus of a few reports, document frequency alone cannot tell "được" from "kết nạp".

A query costs what its terms' postings cost, not what the corpus holds: only the passages
a query term touches are scored, and a term's postings are stored impact-ordered (highest
weight first), so a very common term contributes only its MAX_POSTINGS best postings. The
passages past that bound are the ones where the term weighs least (long passages, one
occurrence) and the term is common, so its weight is small anyway; below the bound (every
term of the sample corpus) scores are exact.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.terms import index_terms, term_prior

K1 = 1.2
B = 0.75
# Postings a query reads per term at most (impact order: a term's best passages first).
MAX_POSTINGS = 20_000


@dataclass
class BM25Index:
    vocabulary: dict[str, int]
    idf: np.ndarray  # per term, from this corpus's document frequencies
    prior: np.ndarray  # per term, its general-language weight (lexicon.prior)
    indptr: np.ndarray  # term t's postings are [indptr[t], indptr[t + 1])
    postings: np.ndarray  # passage rows
    weights: np.ndarray  # BM25 weight of the term in that passage
    n_docs: int
    term_weight: np.ndarray = field(init=False)  # idf * prior: what ranking weighs a term by

    def __post_init__(self) -> None:
        self.term_weight = (self.idf * self.prior).astype(np.float32)

    @classmethod
    def build(cls, texts: list[str]) -> BM25Index:
        counts = [Counter(index_terms(text)) for text in texts]
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        avg_length = float(lengths.mean()) if len(lengths) else 1.0
        vocabulary: dict[str, int] = {}
        by_term: dict[int, list[tuple[int, int]]] = {}
        for row, counter in enumerate(counts):
            for term, tf in counter.items():
                term_id = vocabulary.setdefault(term, len(vocabulary))
                by_term.setdefault(term_id, []).append((row, tf))
        n = len(texts)
        indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        postings_parts, weight_parts = [], []
        idf = np.zeros(len(vocabulary), dtype=np.float32)
        prior = np.array([term_prior(t) for t in vocabulary], dtype=np.float32)
        for term_id in range(len(vocabulary)):
            entries = by_term[term_id]
            rows = np.array([r for r, _ in entries], dtype=np.int32)
            tf = np.array([f for _, f in entries], dtype=np.float32)
            df = len(entries)
            idf[term_id] = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            norm = K1 * (1.0 - B + B * lengths[rows] / max(avg_length, 1e-9))
            postings_parts.append(rows)
            weight = idf[term_id] * prior[term_id]
            weight_parts.append(weight * tf * (K1 + 1.0) / (tf + norm))
            indptr[term_id + 1] = indptr[term_id] + df
        for term_id, (rows, weight) in enumerate(zip(postings_parts, weight_parts, strict=True)):
            # Impact order: highest weight first, ties by row.
            order = np.lexsort((rows, -weight))
            postings_parts[term_id], weight_parts[term_id] = rows[order], weight[order]
        postings = np.concatenate(postings_parts) if postings_parts else np.zeros(0, np.int32)
        weights = np.concatenate(weight_parts) if weight_parts else np.zeros(0, np.float32)
        return cls(vocabulary, idf, prior, indptr, postings, weights.astype(np.float32), n)

    def term_ids(self, terms: list[str]) -> list[int]:
        return [self.vocabulary[t] for t in dict.fromkeys(terms) if t in self.vocabulary]

    def scores(self, term_ids: list[int], term_weights: list[float] | None = None) -> np.ndarray:
        """BM25 score of every passage for the given query terms (n-sized: for tests and
        small corpora; searching uses ``touched``)."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        touched = self.touched(term_ids, term_weights)
        out[touched.rows] = touched.scores
        return out

    def touched(self, term_ids: list[int], term_weights: list[float] | None = None) -> Touched:
        """The passages the query terms touch and their BM25 scores, reading at most
        MAX_POSTINGS postings per term."""
        spans = [(int(self.indptr[t]), int(self.indptr[t + 1])) for t in term_ids]
        spans = [(lo, min(hi, lo + MAX_POSTINGS)) for lo, hi in spans]
        if not spans:
            return Touched(self, {}, np.zeros(0, np.int64), np.zeros(0, np.int64), [])
        rows, where = np.unique(
            np.concatenate([self.postings[lo:hi] for lo, hi in spans]), return_inverse=True
        )
        segments, start = [], 0
        for lo, hi in spans:
            segments.append((lo, hi, start))
            start += hi - lo
        touched = Touched(self, dict(zip(term_ids, segments, strict=True)), rows, where, [])
        touched.scores = touched.accumulate(
            term_ids, term_weights or [1.0] * len(term_ids), self.weights, per_term=False
        )
        return touched

    def save(self, folder: Path) -> None:
        np.savez(
            folder / "bm25.npz",
            idf=self.idf,
            prior=self.prior,
            indptr=self.indptr,
            postings=self.postings,
            weights=self.weights,
            n_docs=np.array([self.n_docs]),
        )
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        (folder / "bm25_vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        arrays = np.load(folder / "bm25.npz")
        terms = json.loads((folder / "bm25_vocabulary.json").read_text())
        idf = arrays["idf"]
        return cls(
            vocabulary={t: i for i, t in enumerate(terms)},
            idf=idf,
            # An index built before the prior existed weighs every term alike.
            prior=arrays["prior"] if "prior" in arrays.files else np.ones_like(idf),
            indptr=arrays["indptr"],
            postings=arrays["postings"],
            weights=arrays["weights"],
            n_docs=int(arrays["n_docs"][0]),
        )


@dataclass
class Touched:
    """The passages a query's terms touch (sorted rows), their BM25 scores, and where each
    term's postings fall among them."""

    bm25: BM25Index
    segments: dict[int, tuple[int, int, int]]  # term id -> (lo, hi) postings, start in where
    rows: np.ndarray
    where: np.ndarray  # per posting read: its index in rows
    scores: np.ndarray

    def accumulate(
        self, term_ids: list[int], factors: list[float], values: np.ndarray, per_term: bool
    ) -> np.ndarray:
        """Per touched row, the sum of factor x value over the given terms' postings, added
        term by term in float32, as a dense accumulation would: equal to the last bit. Within
        a term the rows are distinct, so += is safe."""
        out = np.zeros(len(self.rows), dtype=np.float32)
        for term_id, factor in zip(term_ids, factors, strict=True):
            lo, hi, start = self.segments[term_id]
            v = values[term_id] if per_term else values[lo:hi]
            out[self.where[start : start + hi - lo]] += v if factor == 1.0 else v * factor
        return out

    def matched_weight(self, terms: list[str]) -> np.ndarray:
        """Per touched row, the summed term_weight (idf x prior) of the given terms it
        contains."""
        vocabulary = self.bm25.vocabulary
        ids = [vocabulary[t] for t in dict.fromkeys(terms) if t in vocabulary]
        ids = [t for t in ids if t in self.segments]
        return self.accumulate(ids, [1.0] * len(ids), self.bm25.term_weight, per_term=True)

    def at(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` (per touched row) at the given rows; 0 where a row is not touched."""
        out = np.zeros(len(rows), dtype=np.float32)
        if len(self.rows):
            at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
            hit = self.rows[at] == rows
            out[hit] = values[at[hit]]
        return out


def top_rows(rows: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k best scoring (positive) rows, best first, ties by row: the order a stable sort
    of every passage's score would give, without one."""
    if k < len(scores):
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        chosen = np.flatnonzero(scores >= max(cut, np.float32(0)))
    else:
        chosen = np.arange(len(scores))
    chosen = chosen[scores[chosen] > 0]
    return rows[chosen[np.lexsort((rows[chosen], -scores[chosen]))][:k]]


def ranks(rows: np.ndarray, scores: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rank (from 0) of each wanted row in the BM25 order of every passage: by score, ties
    and unscored passages by row, as a stable sort of the n-sized score array would give.
    ``rows`` (sorted) and ``scores`` are the touched passages; the others score 0."""
    positive = scores > 0
    scored_rows, scored = rows[positive], scores[positive]
    ascending = np.sort(scored)
    out = np.empty(len(wanted), dtype=np.int64)
    at = np.searchsorted(rows, wanted)
    for i, row in enumerate(wanted.tolist()):
        j = int(at[i])
        score = scores[j] if j < len(rows) and rows[j] == row else np.float32(0)
        if score > 0:
            left = np.searchsorted(ascending, score, "left")
            right = np.searchsorted(ascending, score, "right")
            tied = 0
            if right - left > 1:
                tied = int(np.count_nonzero((scored == score) & (scored_rows < row)))
            out[i] = len(scored) - right + tied
        else:  # after every scored passage, in row order among the unscored
            out[i] = len(scored) + row - int(np.searchsorted(scored_rows, row))
    return out
