"""BM25 over the index terms of qabot.terms (syllables, bigrams, accent-folded twins).

Scores are precomputed per (term, passage) as in bm25s, so a query is a few array adds.
For ranking, a term's idf is multiplied by its general-language prior (qabot.lexicon): in a
corpus of a few reports, document frequency alone cannot tell "được" from "kết nạp".
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
        postings = np.concatenate(postings_parts) if postings_parts else np.zeros(0, np.int32)
        weights = np.concatenate(weight_parts) if weight_parts else np.zeros(0, np.float32)
        return cls(vocabulary, idf, prior, indptr, postings, weights.astype(np.float32), n)

    def term_ids(self, terms: list[str]) -> list[int]:
        return [self.vocabulary[t] for t in dict.fromkeys(terms) if t in self.vocabulary]

    def scores(self, term_ids: list[int], term_weights: list[float] | None = None) -> np.ndarray:
        """BM25 score of every passage for the given query terms."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for i, t in enumerate(term_ids):
            lo, hi = self.indptr[t], self.indptr[t + 1]
            w = self.weights[lo:hi]
            out[self.postings[lo:hi]] += w if term_weights is None else w * term_weights[i]
        return out

    def matched_weight(self, term_ids: list[int]) -> np.ndarray:
        """Per passage, the summed term_weight of the query terms it contains."""
        out = np.zeros(self.n_docs, dtype=np.float32)
        for t in term_ids:
            lo, hi = self.indptr[t], self.indptr[t + 1]
            out[self.postings[lo:hi]] += self.term_weight[t]
        return out

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
