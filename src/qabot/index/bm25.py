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

An index is written per segment (qabot.index.layout) with its raw statistics (term
frequencies, passage lengths); SegmentedBM25 scores a version of several segments with
corpus-wide statistics, so that scores do not depend on how the corpus was segmented.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
import mmap
import os
import shutil
import tempfile
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.terms import index_terms, term_prior

K1 = 1.2
B = 0.75
# Postings a query reads per term at most (impact order: a term's best passages first).
# Reading postings is the one part of a query that grows with the corpus, and a common
# word's weakest postings (long passages that use it once) add noise, not answers. With the
# sample reports planted among a million generated passages (bench/haystack.py), hit@1 of
# the 192 questions generated from them rose as the cut fell: 0.74 reading 3,000, 0.74 at
# 2,000, 0.77 at 1,500, 0.81 at 1,000 (hit@5 0.85 to 0.90; the dev questions 0.79 to 0.83),
# and a question reads 26k postings instead of 77k. Exact on any corpus below 1,000 passages
# (the sample reports, the UIT contexts), so the evaluations and the fitted models see
# every posting.
MAX_POSTINGS = 1_000
# Terms whose weighed postings a version of several segments remembers (SegmentedBM25).
POSTINGS_KEPT = 1024
# ranks() counts up to this many rows one by one (two passes over the scores each) before
# sorting the scores once costs less: at a million passages a question touches ~90k.
COUNTED_RANKS = 24
# A build holds this many passages' postings in memory before spilling them to disk, and
# writes the final postings in ranges of about this many.
CHUNK_PASSAGES = 5_000
POSTINGS_PER_RANGE = 1_000_000


@dataclass
class BM25Index:
    vocabulary: Mapping[str, int]  # Vocabulary when loaded from disk
    idf: np.ndarray  # per term, from this corpus's document frequencies
    prior: np.ndarray  # per term, its general-language weight (lexicon.prior)
    indptr: np.ndarray  # term t's postings are [indptr[t], indptr[t + 1])
    postings: np.ndarray  # passage rows
    weights: np.ndarray  # BM25 weight of the term in that passage
    n_docs: int
    # Raw statistics, so that a version of several segments can weigh this segment's
    # postings with corpus-wide df and average length (SegmentedBM25): per posting its term
    # frequency (in the postings' order), per passage its length in terms, and their sum.
    tfs: np.ndarray | None = None
    lengths: np.ndarray | None = None
    total_length: int = 0
    term_weight: np.ndarray = field(init=False)  # idf * prior: what ranking weighs a term by

    _scratch: Scratch = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.term_weight = (self.idf * self.prior).astype(np.float32)
        self._scratch = Scratch(self.n_docs)

    @classmethod
    def build(cls, texts: Iterable[str], chunk: int | None = None) -> BM25Index:
        """An index of ``texts`` in memory (tests, small corpora); builds write with
        BM25Writer."""
        with tempfile.TemporaryDirectory() as folder:
            writer = BM25Writer(Path(folder), chunk or CHUNK_PASSAGES)
            for text in texts:
                writer.add(text)
            writer.close()
            index = cls.load(Path(folder))
            # Read into memory: the files go with the temporary folder.
            index.postings, index.weights = np.array(index.postings), np.array(index.weights)
            index.vocabulary = dict(index.vocabulary)
            return index

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
        cut = frozenset(
            t for t, (lo, hi) in zip(term_ids, spans, strict=True) if hi - lo > MAX_POSTINGS
        )
        spans = [(lo, min(hi, lo + MAX_POSTINGS)) for lo, hi in spans]
        if not spans:
            return Touched(
                self, {}, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
            )
        read = np.concatenate([self.postings[lo:hi] for lo, hi in spans])
        rows, where = distinct_rows(read, self._scratch.slots())
        segments, start = [], 0
        for lo, hi in spans:
            segments.append((lo, hi, start))
            start += hi - lo
        touched = Touched(self, dict(zip(term_ids, segments, strict=True)), rows, where, [], cut)
        touched.scores = touched.accumulate(
            term_ids, term_weights or [1.0] * len(term_ids), self.weights, per_term=False
        )
        return touched

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        arrays = np.load(folder / "bm25.npz")
        idf = arrays["idf"]
        raw = (folder / TFS).exists()
        return cls(
            vocabulary=read_vocabulary(folder),
            idf=idf,
            # An index built before the prior existed weighs every term alike.
            prior=arrays["prior"] if "prior" in arrays.files else np.ones_like(idf),
            indptr=arrays["indptr"],
            # Memory-mapped: a query reads only its terms' postings. Versions from before
            # the streaming build kept them inside bm25.npz.
            postings=_postings_array(folder, arrays, "postings"),
            weights=_postings_array(folder, arrays, "weights"),
            n_docs=int(arrays["n_docs"][0]),
            tfs=_load_mapped(folder / TFS).view(np.ndarray) if raw else None,
            lengths=_load_mapped(folder / LENGTHS).view(np.ndarray) if raw else None,
            total_length=int(arrays["total_length"][0]) if "total_length" in arrays.files else 0,
        )


TFS = "bm25_tfs.npy"  # per posting (postings' order): the term's frequency in the passage
LENGTHS = "bm25_lengths.npy"  # per passage: its number of index terms
HASHES = "bm25_hashes.npy"  # 64-bit hashes of the terms, sorted, and their term ids:
HASH_IDS = "bm25_hash_ids.npy"  # the corpus-wide vocabulary of several segments (global_stats)
TERMS = "bm25_terms.bin"  # the terms in byte order, UTF-8, back to back
TERM_OFFSETS = "bm25_term_offsets.npy"  # term i is TERMS[offsets[i]:offsets[i + 1]]
TERM_IDS = "bm25_term_ids.npy"  # term i's id (its row in idf, prior, indptr)
OLD_VOCABULARY = "bm25_vocabulary.json"  # versions before the term table: ids in order
LOOKUPS_KEPT = 1 << 16  # term lookups a Vocabulary remembers


class Vocabulary(Mapping[str, int]):
    """Term -> id by binary search in a sorted, memory-mapped term table: opening an index
    parses nothing, and the table is paged in as lookups touch it."""

    def __init__(self, folder: Path) -> None:
        with open(folder / TERMS, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            self._blob = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        # Plain ndarray views: indexing a memmap subclass costs microseconds a lookup.
        self._offsets = _load_mapped(folder / TERM_OFFSETS).view(np.ndarray)
        self._ids = _load_mapped(folder / TERM_IDS).view(np.ndarray)
        self._keys = _SortedKeys(self._blob, self._offsets)
        # A binary search over the mapped table costs ~10 µs of Python; a question looks up
        # a few hundred terms (its own, its passages' sentences), mostly the same ones.
        self._found: dict[str, int] = {}

    def _search(self, term: str) -> int:
        key = term.encode("utf-8")
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._ids) and self._keys[at] == key:
            return int(self._ids[at])
        return -1

    def _id(self, term: str) -> int:
        found = self._found.get(term)
        if found is None:
            found = self._search(term)
            if len(self._found) >= LOOKUPS_KEPT:  # bounded: frequent terms come back at once
                self._found.clear()
            self._found[term] = found
        return found

    def __getitem__(self, term: str) -> int:
        found = self._id(term)
        if found < 0:
            raise KeyError(term)
        return found

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self._id(term) >= 0

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        for i in range(len(self._ids)):
            yield self._keys[i].decode("utf-8")


class _SortedKeys(Sequence[bytes]):
    def __init__(self, blob, offsets: np.ndarray) -> None:
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return max(len(self._offsets) - 1, 0)

    def __getitem__(self, i):  # type: ignore[override]
        return self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])]


def write_vocabulary(folder: Path, terms: list[str]) -> None:
    """The term table of ``terms`` (given in id order)."""
    encoded = [t.encode("utf-8") for t in terms]
    order = sorted(range(len(encoded)), key=encoded.__getitem__)
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(encoded[i]) for i in order], out=offsets[1:])
    with open(folder / TERMS, "wb") as handle:
        for i in order:
            handle.write(encoded[i])
    np.save(folder / TERM_OFFSETS, offsets)
    np.save(folder / TERM_IDS, np.array(order, dtype=np.int32))


def read_vocabulary(folder: Path) -> Mapping[str, int]:
    if (folder / TERMS).exists():
        return Vocabulary(folder)
    terms = json.loads((folder / OLD_VOCABULARY).read_text())
    return {t: i for i, t in enumerate(terms)}


def _postings_array(folder: Path, arrays, name: str) -> np.ndarray:
    if name in arrays.files:
        return arrays[name]
    # A plain ndarray view of the mapping: slicing a memmap subclass costs a Python call
    # (__array_finalize__) per slice, a few per term and segment of every question.
    return _load_mapped(folder / f"bm25_{name}.npy").view(np.ndarray)


def _drop_pages(array: np.ndarray) -> None:
    """Unmaps the pages of a memory-mapped array read so far (they stay in the page cache);
    a no-op for an array in memory."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_DONTNEED)


def _load_mapped(path: Path) -> np.ndarray:
    # An empty array cannot be memory-mapped.
    return np.load(path, mmap_mode="r" if path.stat().st_size > 4096 else None)


class BM25Writer:
    """Writes a BM25 index passage by passage with memory bounded by ``chunk`` passages
    (plus the vocabulary and a few numbers per passage), whatever the corpus size.

    Each chunk's postings (term, row, tf) are spilled to disk sorted by term, as bm25s
    builds a CSC matrix; ``close`` then walks the terms in ranges, reads each range's
    postings from every chunk, weighs them with the corpus-wide statistics (df, average
    length) and appends them, impact-ordered, to bm25_postings.npy and bm25_weights.npy.
    Weights are computed with the same float32 operations as term-by-term, so a build in
    chunks equals a build in one.
    """

    def __init__(self, folder: Path, chunk: int = CHUNK_PASSAGES) -> None:
        self.folder = folder
        self.chunk = chunk
        self.parts = folder / ".bm25-parts"
        self.parts.mkdir()
        self.vocabulary: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.lengths: list[np.ndarray] = []
        self.chunks = 0
        self.rows = 0
        self._start_buffer()

    def _start_buffer(self) -> None:
        self._terms, self._rows, self._tfs = array("i"), array("i"), array("i")
        self._lengths = array("f")

    def add(self, text: str) -> None:
        counts = Counter(index_terms(text))
        vocabulary = self.vocabulary
        row = self.rows
        for term, tf in counts.items():
            self._terms.append(vocabulary.setdefault(term, len(vocabulary)))
            self._tfs.append(tf)
        self._rows.extend([row] * len(counts))
        self._lengths.append(sum(counts.values()))
        self.rows += 1
        if len(self._lengths) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if not len(self._lengths):
            return
        terms = np.frombuffer(self._terms, dtype=np.int32)
        order = np.argsort(terms, kind="stable")  # rows stay ascending within a term
        np.save(self.parts / f"{self.chunks}-terms.npy", terms[order])
        np.save(self.parts / f"{self.chunks}-rows.npy", np.frombuffer(self._rows, np.int32)[order])
        np.save(self.parts / f"{self.chunks}-tfs.npy", np.frombuffer(self._tfs, np.int32)[order])
        counted = np.bincount(terms, minlength=len(self.vocabulary))
        counted[: len(self.df)] += self.df
        self.df = counted
        self.lengths.append(np.frombuffer(self._lengths, dtype=np.float32).copy())
        self.chunks += 1
        self._start_buffer()

    def close(self) -> int:
        """Write the index files; the number of passages."""
        self._flush()
        folder, n, vocabulary_size = self.folder, self.rows, len(self.vocabulary)
        df = np.zeros(vocabulary_size, dtype=np.int64)
        df[: len(self.df)] = self.df
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.float32)
        # Lengths are whole numbers: their sum is exact, so a version of several segments
        # computes the same average from the segments' sums.
        total_length = int(lengths.sum(dtype=np.float64))
        avg_length = average_length(total_length, n)
        idf = idf_of(df, n)
        prior = np.array([term_prior(t) for t in self.vocabulary], dtype=np.float32)
        indptr = np.zeros(vocabulary_size + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        total = int(indptr[-1])
        parts = [
            tuple(_load_mapped(self.parts / f"{c}-{name}.npy") for name in ("terms", "rows", "tfs"))
            for c in range(self.chunks)
        ]
        # A term's frequency is at most its passage's length: two bytes hold it (but for
        # passages of 65,536 terms or more).
        tf_type = "<u2" if not len(lengths) or lengths.max() < 65_536 else "<i4"
        with (
            open(folder / "bm25_postings.npy", "wb") as postings_file,
            open(folder / "bm25_weights.npy", "wb") as weights_file,
            open(folder / TFS, "wb") as tfs_file,
        ):
            files = ((postings_file, "<i4"), (weights_file, "<f4"), (tfs_file, tf_type))
            for handle, dtype in files:
                np.lib.format.write_array_header_2_0(
                    handle, {"descr": dtype, "fortran_order": False, "shape": (total,)}
                )
            first = 0
            while first < vocabulary_size:
                # A range of terms holding about one chunk's worth of postings.
                last = int(np.searchsorted(indptr, indptr[first] + POSTINGS_PER_RANGE, "right"))
                last = min(max(last - 1, first + 1), vocabulary_size)
                pieces = []
                for terms, rows, tfs in parts:
                    # Bounds of the chunk's own dtype: searching an int32 array for Python
                    # ints casts (reads) all of it, every chunk's terms for every range.
                    lo, hi = np.searchsorted(terms, np.array([first, last], dtype=terms.dtype))
                    pieces.append((terms[lo:hi], rows[lo:hi], tfs[lo:hi]))
                term = np.concatenate([p[0] for p in pieces])
                order = np.argsort(term, kind="stable")  # chunk order is row order
                term = term[order]
                row = np.concatenate([p[1] for p in pieces])[order]
                tf = np.concatenate([p[2] for p in pieces])[order].astype(np.float32)
                weight = bm25_weight(idf[term] * prior[term], tf, lengths[row], avg_length)
                # Impact order within each term: highest weight first, ties by row.
                impact = np.lexsort((row, -weight, term))
                postings_file.write(row[impact].astype("<i4").tobytes())
                weights_file.write(weight[impact].astype("<f4").tobytes())
                tfs_file.write(tf[impact].astype(tf_type).tobytes())
                first = last
                # The chunks' pages read so far stay mapped, and counted as this process's
                # memory, until dropped: at a million passages they were 5 GB of a 6.7 GB peak.
                for arrays in parts:
                    for array in arrays:
                        _drop_pages(array)
        np.savez(
            folder / "bm25.npz",
            idf=idf,
            prior=prior,
            indptr=indptr,
            n_docs=np.array([n]),
            total_length=np.array([total_length]),
        )
        np.save(folder / LENGTHS, lengths)
        terms = list(self.vocabulary)  # in id order
        write_vocabulary(folder, terms)
        hashes = np.array([term_hash(t) for t in terms], dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        np.save(folder / HASHES, hashes[order])
        np.save(folder / HASH_IDS, order.astype(np.int32))
        shutil.rmtree(self.parts)
        return n


def average_length(total_length: int, n: int) -> float:
    return total_length / n if n else 1.0


def idf_of(df: np.ndarray, n: int) -> np.ndarray:
    """Per term, the BM25 idf of its document frequency among n passages (float32)."""
    return np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)


def bm25_weight(term_weight, tf: np.ndarray, lengths: np.ndarray, avg_length: float):
    """A term's BM25 weight in passages (tf and lengths float32), in float32 operations in one
    fixed order: a build and a query over several segments get the same bits."""
    norm = K1 * (1.0 - B + B * lengths / max(avg_length, 1e-9))
    return term_weight * tf * (K1 + 1.0) / (tf + norm)


def term_hash(term: str) -> int:
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little")


class Scratch(threading.local):
    """Per thread, a slot per passage (int32) that distinct_rows reuses from query to query
    (allocating it per query would cost what the corpus holds). Made on a thread's first
    query."""

    def __init__(self, n_docs: int) -> None:
        self.n_docs = n_docs
        self._slots: np.ndarray | None = None

    def slots(self) -> np.ndarray:
        if self._slots is None:
            self._slots = np.empty(self.n_docs, dtype=np.int32)
        return self._slots


def distinct_rows(read: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of the postings read (sorted), and per posting its index in them.

    Each row's slot takes the position of one of its postings (whichever numpy writes last),
    so exactly one posting per row finds its own position there: those are the distinct
    rows. They are sorted by their low 16 bits, then stably by their high 16 bits: numpy
    sorts 16-bit keys stably by counting, in linear time. At a million passages a question
    reads about 27,000 postings: 0.49 ms against 0.78 ms with a comparison sort, and
    against marking the rows in a byte per passage and scanning it (0.8 against 1.1 ms at
    40,000 postings, 2.0 against 2.4 at 100,000). Every slot read was written by this
    query, so the slots need no clearing."""
    positions = np.arange(len(read), dtype=np.int32)
    slot[read] = positions
    rows = read[slot[read] == positions].astype(np.int32, copy=False)
    rows = rows[np.argsort(rows.astype(np.uint16), kind="stable")]
    rows = rows[np.argsort((rows >> 16).astype(np.uint16), kind="stable")]
    slot[rows] = np.arange(len(rows), dtype=np.int32)
    return rows.astype(read.dtype, copy=False), slot[read]


@dataclass
class Touched:
    """The passages a query's terms touch (sorted rows), their BM25 scores, and where each
    term's postings fall among them."""

    bm25: BM25Index
    segments: dict[int, tuple[int, int, int]]  # term id -> (lo, hi) postings, start in where
    rows: np.ndarray
    where: np.ndarray  # per posting read: its index in rows
    scores: np.ndarray
    # Terms whose postings were cut at MAX_POSTINGS: a passage may hold them unseen.
    cut: frozenset[int] = frozenset()

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

    def may_hold(self, rows: np.ndarray, terms: list[str]) -> np.ndarray:
        """Per row: False only when the passage holds none of the terms for certain (every
        posting of each term was read, or the corpus never uses it)."""
        vocabulary = self.bm25.vocabulary
        ids = [vocabulary[t] for t in dict.fromkeys(terms) if t in vocabulary]
        if any(t not in self.segments or t in self.cut for t in ids):
            return np.ones(len(rows), dtype=bool)
        held = np.zeros(len(self.rows), dtype=np.float32)
        for term_id in ids:
            lo, hi, start = self.segments[term_id]
            held[self.where[start : start + hi - lo]] = 1.0
        return self.at(rows, held) > 0

    def cut_weight(self, terms: list[str]) -> float:
        """The summed term_weight of the given terms whose postings were cut: what
        matched_weight may miss in a passage (0.0 when every posting was read)."""
        vocabulary = self.bm25.vocabulary
        ids = [vocabulary[t] for t in dict.fromkeys(terms) if t in vocabulary]
        return float(sum(self.bm25.term_weight[t] for t in ids if t in self.cut))

    def at(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` (per touched row) at the given rows; 0 where a row is not touched."""
        out = np.zeros(len(rows), dtype=np.float32)
        if len(self.rows):
            at = np.searchsorted(self.rows, rows.astype(self.rows.dtype, copy=False))
            at = np.minimum(at, len(self.rows) - 1)
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


def ranks(
    rows: np.ndarray, scores: np.ndarray, wanted: np.ndarray, leading: np.ndarray | None = None
) -> np.ndarray:
    """Rank (from 0) of each wanted row in the BM25 order of every passage: by score, ties
    and unscored passages by row, as a stable sort of the n-sized score array would give.
    ``rows`` (sorted) and ``scores`` are the touched passages; the others score 0.
    ``leading``: the first rows of that order (top_rows of the same scores), when the
    caller has them: their ranks are their positions. A few other scored rows are counted
    one by one (two passes over the scores each); more than COUNTED_RANKS sort the scores."""
    positive = scores > 0
    scored_rows, scored = rows[positive], scores[positive]
    at = np.searchsorted(rows, wanted.astype(rows.dtype, copy=False))  # rows: not cast
    inside = at < len(rows)
    touched = np.zeros(len(wanted), dtype=bool)
    touched[inside] = rows[at[inside]] == wanted[inside]
    score = np.zeros(len(wanted), dtype=np.float32)
    score[touched] = scores[at[touched]]
    out = np.zeros(len(wanted), dtype=np.int64)
    # Unscored: after every scored passage, in row order among the unscored.
    unscored = score <= 0
    out[unscored] = (
        len(scored)
        + wanted[unscored]
        - np.searchsorted(scored_rows, wanted[unscored].astype(scored_rows.dtype, copy=False))
    )
    # Scored: after every higher score, and after the tied passages of lower rows.
    position = {} if leading is None else {int(r): i for i, r in enumerate(leading.tolist())}
    counted = []
    for i in np.flatnonzero(~unscored).tolist():
        known = position.get(int(wanted[i]))
        if known is None:
            counted.append(i)
        else:
            out[i] = known
    if len(counted) <= COUNTED_RANKS:
        higher = [int(np.count_nonzero(scored > score[i])) for i in counted]
        shared = [True] * len(counted)  # whether another passage may have the same score
    else:
        ascending = np.sort(scored)
        left = np.searchsorted(ascending, score[counted], "left")
        right = np.searchsorted(ascending, score[counted], "right")
        higher, shared = (len(scored) - right).tolist(), (right - left > 1).tolist()
    for i, above, tie in zip(counted, higher, shared, strict=True):
        out[i] = above
        if tie:
            out[i] += int(np.count_nonzero((scored == score[i]) & (scored_rows < wanted[i])))
    return out


# --- several segments ------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalStats:
    """Corpus-wide BM25 statistics of a version's segments, computed when it is published:
    every segment's rows count (deleted ones too, until a merge drops them, as in Lucene)."""

    n_docs: int
    total_length: int
    terms: int  # distinct terms
    max_idf: float
    max_term_weight: float

    def as_dict(self) -> dict:
        return {
            "n_docs": self.n_docs,
            "total_length": self.total_length,
            "terms": self.terms,
            "max_idf": self.max_idf,
            "max_term_weight": self.max_term_weight,
        }

    @classmethod
    def of(cls, data: dict) -> GlobalStats:
        return cls(
            int(data["n_docs"]),
            int(data["total_length"]),
            int(data["terms"]),
            float(data["max_idf"]),
            float(data["max_term_weight"]),
        )


def global_stats(folders: Sequence[Path]) -> GlobalStats:
    """The statistics of the segments in ``folders`` together. Terms are matched by 64-bit
    hash (stored sorted by each segment): the largest segment's terms are the base, and only
    the other segments' terms are looked up in it, so adding a small segment to a large one
    costs a pass over the base's arrays, not a merge of vocabularies."""
    parts = []
    for folder in folders:
        arrays = np.load(folder / "bm25.npz")
        ids = np.load(folder / HASH_IDS)
        df = np.diff(arrays["indptr"])[ids]
        parts.append((np.load(folder / HASHES), df, arrays["prior"][ids], arrays))
    n = sum(int(p[3]["n_docs"][0]) for p in parts)
    total = sum(int(p[3]["total_length"][0]) for p in parts)
    if not parts:
        return GlobalStats(0, 0, 0, 1.0, 1.0)
    parts.sort(key=lambda p: -len(p[0]))
    base_hashes, base_df, base_prior, _ = parts[0]
    df = base_df.astype(np.int64)
    extra_hashes, extra_df, extra_prior = [], [], []
    for hashes, part_df, prior, _ in parts[1:]:
        at = np.minimum(np.searchsorted(base_hashes, hashes), max(len(base_hashes) - 1, 0))
        found = (base_hashes[at] == hashes) if len(base_hashes) else np.zeros(len(hashes), bool)
        np.add.at(df, at[found], part_df[found])
        extra_hashes.append(hashes[~found])
        extra_df.append(part_df[~found])
        extra_prior.append(prior[~found])
    all_df, all_prior = [df], [base_prior]
    if extra_hashes:
        hashes = np.concatenate(extra_hashes)
        _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        all_df.append(np.bincount(inverse, weights=np.concatenate(extra_df)).astype(np.int64))
        all_prior.append(np.concatenate(extra_prior)[first])
    df, prior = np.concatenate(all_df), np.concatenate(all_prior)
    idf = idf_of(df, n)
    weight = (idf * prior).astype(np.float32)
    return GlobalStats(
        n,
        total,
        len(df),
        float(idf.max()) if len(idf) else 1.0,
        float(weight.max()) if len(weight) else 1.0,
    )


class _GlobalVocabulary(Mapping[str, int]):
    """Term -> a query-time id of a SegmentedBM25: the first lookup of a term sums its df
    over the segments and remembers it (only terms the corpus holds are remembered)."""

    def __init__(self, owner: SegmentedBM25) -> None:
        self._owner = owner

    def __getitem__(self, term: str) -> int:
        return self._owner._intern(term)

    def __len__(self) -> int:
        return self._owner.stats.terms

    def __iter__(self) -> Iterator[str]:
        last = None
        for term in heapq.merge(
            *(iter(p.vocabulary) for p in self._owner.parts), key=lambda t: t.encode("utf-8")
        ):
            if term != last:
                yield term
                last = term


class _TermValues:
    """idf or term weight by query-time term id, with the corpus-wide maximum."""

    def __init__(self, values: list[np.float32], size: int, most: float) -> None:
        self._values, self._size, self._max = values, size, most

    def __getitem__(self, term_id: int) -> np.float32:
        return self._values[term_id]

    def __len__(self) -> int:
        return self._size

    def max(self) -> np.float32:
        return np.float32(self._max)


class SegmentedBM25:
    """BM25 over a version's segments, scored as one index of all their passages.

    Each segment keeps its own postings with raw term frequencies and passage lengths; a
    query weighs the postings it reads with corpus-wide statistics (df summed over the
    segments, the average length of every passage), in the same float32 operations as a
    build, so an index grown segment by segment scores exactly like one built at once.
    Rows of deleted documents (tombstones) are dropped from what a query reads; their terms
    still count in df and lengths until a merge rewrites the segments (as in Lucene).
    A term reads at most MAX_POSTINGS postings in each segment.
    """

    def __init__(
        self,
        parts: Sequence[BM25Index],
        starts: Sequence[int],
        deleted: Sequence[np.ndarray | None],
        stats: GlobalStats,
    ) -> None:
        self.parts, self.starts, self.deleted = list(parts), list(starts), list(deleted)
        self.stats = stats
        self.n_docs = sum(p.n_docs for p in self.parts)
        self.avg_length = average_length(stats.total_length, stats.n_docs)
        self._ids: dict[str, int] = {}
        self._locals: list[tuple[int | None, ...]] = []
        self._sizes: list[tuple[int, ...]] = []  # per term, its postings in each segment
        self._idf: list[np.float32] = []
        self._weight: list[np.float32] = []
        self._lock = threading.Lock()
        self._scratch = Scratch(self.n_docs)
        # Per term, the rows and weights postings() computed: questions repeat their common
        # terms, and weighing 5,000 postings a segment again was a tenth of a question's
        # cost on a version of several segments. Bounded: a term is up to 8 KB a segment.
        self._weighed: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.vocabulary = _GlobalVocabulary(self)
        self.idf = _TermValues(self._idf, stats.terms, stats.max_idf)
        self.term_weight = _TermValues(self._weight, stats.terms, stats.max_term_weight)

    def _intern(self, term: str) -> int:
        found = self._ids.get(term)
        if found is not None:
            return found
        local = tuple(p.vocabulary.get(term) for p in self.parts)
        if all(t is None for t in local):
            raise KeyError(term)
        sizes = tuple(
            int(p.indptr[t + 1] - p.indptr[t]) if t is not None else 0
            for p, t in zip(self.parts, local, strict=True)
        )
        df = sum(sizes)
        prior = next(p.prior[t] for p, t in zip(self.parts, local, strict=True) if t is not None)
        idf = idf_of(np.array([df], dtype=np.int64), self.stats.n_docs)
        weight = (idf * np.array([prior], dtype=np.float32)).astype(np.float32)
        with self._lock:
            found = self._ids.get(term)
            if found is None:
                found = len(self._locals)
                self._locals.append(local)
                self._sizes.append(sizes)
                self._idf.append(idf[0])
                self._weight.append(weight[0])
                self._ids[term] = found
        return found

    def term_ids(self, terms: list[str]) -> list[int]:
        return [self.vocabulary[t] for t in dict.fromkeys(terms) if t in self.vocabulary]

    def scores(self, term_ids: list[int], term_weights: list[float] | None = None) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float32)
        touched = self.touched(term_ids, term_weights)
        out[touched.rows] = touched.scores
        return out

    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows (global) and weights of the postings a query reads for one term
        (read-only arrays, remembered for the POSTINGS_KEPT terms asked last)."""
        with self._lock:
            found = self._weighed.get(term_id)
            if found is not None:
                self._weighed.move_to_end(term_id)
                return found
        found = self._weigh(term_id)
        for values in found:
            values.setflags(write=False)
        with self._lock:
            self._weighed[term_id] = found
            while len(self._weighed) > POSTINGS_KEPT:
                self._weighed.popitem(last=False)
        return found

    def _weigh(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows, weights = [], []
        term_weight = self._weight[term_id]
        for part, start, deleted, local in zip(
            self.parts, self.starts, self.deleted, self._locals[term_id], strict=True
        ):
            if local is None:
                continue
            lo = int(part.indptr[local])
            hi = min(int(part.indptr[local + 1]), lo + MAX_POSTINGS)
            read = np.asarray(part.postings[lo:hi])
            tf = np.asarray(part.tfs[lo:hi]).astype(np.float32)
            if deleted is not None:
                keep = ~deleted[read]
                read, tf = read[keep], tf[keep]
            lengths = np.asarray(part.lengths)[read]
            rows.append(read.astype(np.int32) + np.int32(start))
            weights.append(bm25_weight(term_weight, tf, lengths, self.avg_length))
        if not rows:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        return np.concatenate(rows), np.concatenate(weights).astype(np.float32)

    def _cut(self, term_id: int) -> bool:
        """Whether a query reads only part of the term's postings in some segment."""
        return any(size > MAX_POSTINGS for size in self._sizes[term_id])

    def touched(self, term_ids: list[int], term_weights: list[float] | None = None) -> Touched:
        if not term_ids:
            return Touched(
                self, {}, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
            )
        read, values, segments, start = [], [], {}, 0
        for term_id in term_ids:
            rows, weights = self.postings(term_id)
            read.append(rows)
            values.append(weights)
            segments[term_id] = (start, start + len(rows), start)
            start += len(rows)
        read_rows = np.concatenate(read)
        weights = np.concatenate(values)
        rows, where = distinct_rows(read_rows, self._scratch.slots())
        cut = frozenset(t for t in term_ids if self._cut(t))
        touched = Touched(self, segments, rows, where, [], cut)
        touched.scores = touched.accumulate(
            term_ids, term_weights or [1.0] * len(term_ids), weights, per_term=False
        )
        return touched
