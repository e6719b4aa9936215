"""One index version read into memory for searching, and how a version is chosen to open.

open_index serves the live version when it is whole; when it is damaged (checksums, a
missing file, a file its reader refuses), it logs what is wrong and serves the newest good
version instead, so a damaged file never stops the service.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Generic, TypeVar

import faiss
import numpy as np

from qabot.errors import IndexDamagedError, IndexMismatchError, IndexMissingError
from qabot.index import meta
from qabot.index.bm25 import BM25Index, GlobalStats, SegmentedBM25
from qabot.index.layout import (
    FORMAT,
    VERSIONS,
    Problem,
    VersionDamage,
    current_version,
    hold_version,
    list_versions,
    pointer_problem,
    read_manifest,
    segment_folder,
    verify_version,
    version_segments,
)
from qabot.index.passage_periods import PassagePeriods
from qabot.index.sentence_tokens import SentenceTokens, TokenMatches, concatenated_ranges
from qabot.index.vectors import load_sentences, load_vector_index
from qabot.messages import no_index_in
from qabot.passages import Passage
from qabot.restore import Restorer, RestoreStats
from qabot.terms import syllable_set, term_sets

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SentenceTerms = list[tuple[frozenset[str], frozenset[str]]]


class LruCache(Generic[K, V]):
    """At most ``size`` entries; the least recently used goes first. Not locked: a lost
    update only costs recomputing an entry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        try:
            value = self._items[key]
        except KeyError:
            value = make()
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value
        try:  # noqa: SIM105 - suppress() costs a microsecond, hundreds of times a question
            self._items.move_to_end(key)
        except KeyError:
            pass  # another thread evicted it meanwhile: the value is still right
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class DerivedCache:
    """Lookups derived from a loaded version, computed on first use."""

    # Per (passage row, folded): its sentences' term sets. Answer extraction (and ranking,
    # for a segment without sentence tokens) looks at the same few passages often. Bounded
    # by what the cyclic garbage collector walks, too: an entry is a dozen frozensets, and
    # a full collection visits every string of each (20,000 entries of 12 sets of 20
    # strings: 460 ms a collection on a busy machine; 4,096: 88 ms).
    sentence_terms: LruCache[tuple[int, bool], SentenceTerms] = field(
        default_factory=lambda: LruCache(2_048)
    )

    # Per (passage row, folded): every syllable and bigram of the passage and its header
    # (ranking reads it only for a segment without sentence tokens).
    passage_terms: LruCache[tuple[int, bool], tuple[frozenset[str], frozenset[str]]] = field(
        default_factory=lambda: LruCache(2_048)
    )
    # Per (document id, folded): the syllables of the context header (title, date).
    header_terms: LruCache[tuple[str, bool], frozenset[str]] = field(
        default_factory=lambda: LruCache(20_000)
    )
    # Per (document id, folded): the syllables and bigrams of its subject (qabot.subject),
    # for a segment without subject tokens (ranking reads those from the index).
    subject_terms: LruCache[tuple[str, bool], tuple[frozenset[str], frozenset[str]]] = field(
        default_factory=lambda: LruCache(4_096)
    )
    # Per (segment id, a question's terms): their ids in the segment's vocabulary.
    term_ids: LruCache[tuple[str, tuple[str, ...]], np.ndarray] = field(
        default_factory=lambda: LruCache(1_024)
    )


@dataclass
class Segment:
    """One segment of a loaded version: its passages are the version's rows
    [start, start + len(passages)); ``deleted`` marks the rows of its tombstoned documents."""

    id: str
    folder: Path
    start: int
    passages: meta.PassageStore
    documents: list[meta.DocumentInfo]  # its live documents (tombstoned ones left out)
    vectors: faiss.Index
    bm25: BM25Index
    sentence_spans: np.ndarray  # (n, 3): local passage row, start, end
    sentence_vectors: np.ndarray  # (n, dim), float16, memory-mapped
    sentence_offsets: np.ndarray  # (passages + 1,)
    deleted: np.ndarray | None = None  # bool per local row; None when nothing is deleted
    deleted_rows: int = 0
    # Its sentences' syllable ids (qabot.index.sentence_tokens); None for a segment built
    # before them, whose sentences are tokenised when read.
    tokens: SentenceTokens | None = None
    # The periods its passages name (qabot.index.passage_periods); None: read from text.
    periods: PassagePeriods | None = None

    def __post_init__(self) -> None:
        # Plain ndarray views of the mapped files: every slice of a memmap subclass runs its
        # __array_finalize__, tens of thousands of times a second on a busy server.
        self.sentence_spans = _plain(self.sentence_spans)
        self.sentence_vectors = _plain(self.sentence_vectors)
        self.sentence_offsets = _plain(self.sentence_offsets)

    @property
    def end(self) -> int:
        return self.start + len(self.passages)


class SegmentedPassages(Sequence[Passage]):
    """The passages of several segments as one sequence of rows (tombstoned rows included:
    a row keeps its number; search never returns one)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments = list(segments)
        self._starts = [s.start for s in self._segments]
        self._count = self._segments[-1].end if self._segments else 0

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._count))]
        row = meta.row_number(row, self._count)
        segment = self._segments[bisect.bisect_right(self._starts, row) - 1]
        return segment.passages[row - segment.start]

    def many(self, rows: Sequence[int]) -> list[Passage]:
        """The passages at ``rows``, read segment by segment (PassageStore.many)."""
        rows = [meta.row_number(r, self._count) for r in rows]
        by_segment: dict[int, list[int]] = {}
        for row in rows:
            by_segment.setdefault(bisect.bisect_right(self._starts, row) - 1, []).append(row)
        found: dict[int, Passage] = {}
        for at, wanted in by_segment.items():
            segment = self._segments[at]
            local = segment.passages.many([r - segment.start for r in wanted])
            found.update(zip(wanted, local, strict=True))
        return [found[r] for r in rows]

    def __iter__(self) -> Iterator[Passage]:
        for segment in self._segments:
            yield from segment.passages

    def cached(self) -> int:
        return sum(s.passages.cached() for s in self._segments)


def rows_by_segment(
    starts: Sequence[int], rows: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per segment holding some of ``rows`` (version rows; ``starts``: each segment's first
    row, ascending): its index, the positions in ``rows`` of its rows and those rows local
    to it. A few array operations for a question's candidates, not a lookup per row."""
    rows = np.asarray(rows, dtype=np.int64)
    of_segment = np.searchsorted(starts, rows, "right") - 1
    for index in np.unique(of_segment).tolist():
        positions = np.flatnonzero(of_segment == index)
        yield index, positions, rows[positions] - starts[index]


class SegmentedVectors:
    """FAISS search over several segments' indexes as over one: each segment is searched
    for k (plus its deleted rows, so that k live ones remain) and the results merged by
    score, ties by row; rows are the version's."""

    def __init__(self, segments: Sequence[Segment], dim: int) -> None:
        self._segments = list(segments)
        self._starts = [s.start for s in self._segments]
        self.ntotal = self._segments[-1].end if self._segments else 0
        self.d = dim

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        found_scores, found_rows = [], []
        for segment in self._segments:
            size, deleted, extra = segment.vectors.ntotal, segment.deleted, segment.deleted_rows
            # Over-fetch for the deleted rows among the best: a few k first, every deleted
            # row only when that left fewer than k live ones.
            want = min(size, k + min(extra, 3 * k))
            if not want:
                continue
            scores, rows = segment.vectors.search(queries, want)
            keep = rows >= 0
            if deleted is not None:
                keep &= ~deleted[np.maximum(rows, 0)]
                if want < min(size, k + extra) and keep.sum(axis=1).min() < min(k, size - extra):
                    scores, rows = segment.vectors.search(queries, min(size, k + extra))
                    keep = (rows >= 0) & ~deleted[np.maximum(rows, 0)]
            found_scores.append(np.where(keep, scores, -np.inf))
            found_rows.append(np.where(keep, rows + segment.start, -1))
        if not found_scores:
            return np.full((len(queries), k), -np.inf, np.float32), np.full(
                (len(queries), k), -1, np.int64
            )
        scores, rows = np.concatenate(found_scores, axis=1), np.concatenate(found_rows, axis=1)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        out_rows = np.full((len(queries), k), -1, np.int64)
        for q in range(len(queries)):
            order = np.lexsort((rows[q], -scores[q]))
            order = order[rows[q][order] >= 0][:k]
            out_scores[q, : len(order)] = scores[q][order]
            out_rows[q, : len(order)] = rows[q][order]
        return out_scores, out_rows

    def reconstruct(self, row: int) -> np.ndarray:
        segment = self._segments[bisect.bisect_right(self._starts, int(row)) - 1]
        return segment.vectors.reconstruct(int(row) - segment.start)

    def reconstruct_batch(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (as faiss.Index.reconstruct_batch): one call per segment,
        not one per row (80 rows of an IVF index: 0.09 ms against 0.42)."""
        out = np.zeros((len(rows), self.d), dtype=np.float32)
        for index, positions, local in rows_by_segment(self._starts, rows):
            out[positions] = self._segments[index].vectors.reconstruct_batch(local)
        return out


@dataclass
class LoadedIndex:
    """One index version, read for searching: its segments' passages as one sequence of
    rows, their vectors, BM25 with corpus-wide statistics, sentences and metadata.

    A version of one segment without tombstones (what a fresh build or a merge writes) is
    served by that segment's own objects; otherwise by the segmented ones above.
    """

    index_dir: Path
    version: str
    manifest: dict
    segments: tuple[Segment, ...]
    passages: meta.PassageStore | SegmentedPassages  # read on demand
    documents: list[meta.DocumentInfo]
    vectors: faiss.Index | SegmentedVectors
    bm25: BM25Index | SegmentedBM25
    restorer: Restorer | None = None  # diacritics of questions typed without them
    # Newer versions that were damaged when this one was opened in their place, newest first.
    damaged: tuple[VersionDamage, ...] = ()
    cache: DerivedCache = field(default_factory=DerivedCache, repr=False)
    # The shared lock that keeps builds from pruning this version (and so its segments)
    # while it is served; released when the index is garbage collected.
    lease: IO | None = field(default=None, repr=False, compare=False)
    _documents_by_id: dict[str, meta.DocumentInfo] = field(init=False, repr=False)
    _segment_of_document: dict[str, Segment] = field(init=False, repr=False)
    _starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._documents_by_id = {d.doc_id: d for d in self.documents}
        self._segment_of_document = {
            d.doc_id: segment for segment in self.segments for d in segment.documents
        }
        self._starts = [s.start for s in self.segments]

    def segment_of(self, row: int) -> Segment:
        return self.segments[bisect.bisect_right(self._starts, row) - 1]

    @property
    def live_passages(self) -> int:
        """Passages searched: rows less tombstoned ones."""
        return len(self.passages) - sum(s.deleted_rows for s in self.segments)

    def is_deleted(self, row: int) -> bool:
        segment = self.segment_of(row)
        return segment.deleted is not None and bool(segment.deleted[row - segment.start])

    @property
    def sentence_spans(self) -> np.ndarray:
        """Every sentence's (version row, start, end), in row order (tests and benches:
        searching reads one passage's with ``sentences_of``)."""
        if len(self.segments) == 1:
            return self.segments[0].sentence_spans
        parts = [np.asarray(s.sentence_spans) + np.array([s.start, 0, 0]) for s in self.segments]
        return np.concatenate(parts).astype(np.int32) if parts else np.zeros((0, 3), np.int32)

    @property
    def sentence_vectors(self) -> np.ndarray:
        if len(self.segments) == 1:
            return self.segments[0].sentence_vectors
        return np.concatenate([np.asarray(s.sentence_vectors) for s in self.segments])

    def sentence_terms(self, row: int, folded: bool) -> SentenceTerms:
        """Per sentence of a passage: its syllables and syllable bigrams (folded: "~dang")."""

        def make() -> SentenceTerms:
            text = self.passages[row].text
            spans = self.sentence_spans_of(row)
            return [term_sets(text[s:e], folded) for s, e in spans.tolist()]

        return self.cache.sentence_terms.get((row, folded), make)

    def passage_terms(self, row: int, folded: bool) -> tuple[frozenset[str], frozenset[str]]:
        """Syllables (with the context header's) and bigrams of a whole passage."""

        def make() -> tuple[frozenset[str], frozenset[str]]:
            words, pairs = set(self.header_terms(row, folded)), set()
            for sentence_words, sentence_pairs in self.sentence_terms(row, folded):
                words |= sentence_words
                pairs |= sentence_pairs
            return frozenset(words), frozenset(pairs)

        return self.cache.passage_terms.get((row, folded), make)

    def header_terms(
        self, row: int, folded: bool, passage: Passage | None = None
    ) -> frozenset[str]:
        """Syllables of a passage's context header (title, date): context for every sentence.
        ``passage``: the passage at ``row``, when the caller has read it already."""
        passage = passage if passage is not None else self.passages[row]
        return self.cache.header_terms.get(
            (passage.doc_id, folded), lambda: syllable_set(passage.header, folded)
        )

    def subject_terms(self, doc_id: str, folded: bool) -> tuple[frozenset[str], frozenset[str]]:
        """Syllables and bigrams of a document's subject (qabot.subject): the names every
        passage of it inherits."""

        def make() -> tuple[frozenset[str], frozenset[str]]:
            info = self.document(doc_id)
            return term_sets(info.subject if info is not None else "", folded)

        return self.cache.subject_terms.get((doc_id, folded), make)

    def sentence_matches(
        self, rows: Sequence[int], terms: tuple[str, ...], folded: bool
    ) -> list[TokenMatches]:
        """The sentences of the passages at ``rows`` as tokens matched against ``terms``
        (syllables in a question's form: "~dang" when folded), one TokenMatches per segment.
        A passage whose segment has no sentence tokens (qabot.index.sentence_tokens), or
        whose tokens cannot say it exactly, is left out: its text must be read."""
        out = []
        for index, positions, local in rows_by_segment(self._starts, rows):
            segment = self.segments[index]
            tokens = segment.tokens
            if tokens is None:
                continue
            if tokens.inexact_rows:
                exact = np.array([r not in tokens.inexact_rows for r in local.tolist()], bool)
                positions, local = positions[exact], local[exact]
            if not len(positions):
                continue
            first = segment.sentence_offsets[local]
            last = segment.sentence_offsets[local + 1]
            token_ids, lengths = tokens.of_sentence_ranges(first, last, folded)
            ids = self.cache.term_ids.get(
                (segment.id, terms), lambda s=segment: _term_ids(s, terms)
            )
            out.append(TokenMatches.of_arrays(positions, token_ids, lengths, last - first, ids))
        return out

    def subject_matches(
        self, doc_ids: Sequence[str], terms: tuple[str, ...], folded: bool
    ) -> list[TokenMatches]:
        """The subjects of the documents ``doc_ids`` as tokens matched against ``terms``, one
        TokenMatches per segment, each subject one passage of one sentence (term_sets pairs
        every two adjacent syllables of a subject). A document whose segment has no subject
        tokens, or whose tokens cannot say it exactly, is left out: subject_terms reads it."""
        groups: dict[str, tuple[Segment, list[int]]] = {}
        for position, doc_id in enumerate(doc_ids):
            segment = self._segment_of_document.get(doc_id)
            if segment is None or segment.tokens is None or segment.tokens.subjects is None:
                continue
            groups.setdefault(segment.id, (segment, []))[1].append(position)
        out = []
        for segment, positions in groups.values():
            tokens = segment.tokens
            found, token_ids, lengths = tokens.subjects.of_documents(
                [doc_ids[p] for p in positions], tokens.folded_ids, folded
            )
            term_ids = self.cache.term_ids.get(
                (segment.id, terms), lambda s=segment: _term_ids(s, terms)
            )
            out.append(
                TokenMatches.of_arrays(
                    np.array(positions, dtype=np.int64)[found],
                    token_ids,
                    lengths,
                    np.ones(len(found), dtype=np.int64),
                    term_ids,
                )
            )
        return out

    def period_matches(
        self, rows: np.ndarray, period: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: whether its segment stored its periods, and then whether it names a
        period and whether one of them overlaps ``period`` (PassagePeriods.match)."""
        stored = np.zeros(len(rows), dtype=bool)
        named = np.zeros(len(rows), dtype=bool)
        overlapping = np.zeros(len(rows), dtype=bool)
        for index, positions, local in rows_by_segment(self._starts, rows):
            periods = self.segments[index].periods
            if periods is not None:
                stored[positions] = True
                named[positions], overlapping[positions] = periods.match(local, period)
        return stored, named, overlapping

    def stored_periods(self, row: int) -> tuple[tuple[int, int], ...] | None:
        """The periods a passage names as its segment stored them; None when it did not."""
        segment = self.segment_of(row)
        return segment.periods.of(row - segment.start) if segment.periods is not None else None

    def _sentence_rows(self, row: int) -> tuple[Segment, int, int]:
        """The segment of a passage and where its sentences lie in that segment's arrays."""
        segment = self.segment_of(row)
        local = row - segment.start
        offsets = segment.sentence_offsets
        return segment, int(offsets[local]), int(offsets[local + 1])

    def sentence_spans_of(self, row: int) -> np.ndarray:
        """Spans (start, end) of one passage's sentences, without their vectors."""
        segment, lo, hi = self._sentence_rows(row)
        return segment.sentence_spans[lo:hi, 1:]

    def sentences_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Spans (start, end) and vectors of one passage's sentences."""
        segment, lo, hi = self._sentence_rows(row)
        return segment.sentence_spans[lo:hi, 1:], np.asarray(
            segment.sentence_vectors[lo:hi], dtype=np.float32
        )

    def best_sentence_cosines(self, rows: Sequence[int], query_vector: np.ndarray) -> np.ndarray:
        """Per passage row: its sentences' best cosine with ``query_vector`` (NaN for a
        passage without sentences). One gather and one product per segment: a question's
        candidates cost one call, not one each."""
        best = np.full(len(rows), np.nan, dtype=np.float32)
        for index, positions, local in rows_by_segment(self._starts, rows):
            segment = self.segments[index]
            first = segment.sentence_offsets[local]
            last = segment.sentence_offsets[local + 1]
            filled = last > first
            if not filled.any():
                continue
            first, last = first[filled], last[filled]
            lengths = last - first
            places = np.cumsum(lengths) - lengths  # each passage's first place in the gather
            gathered = concatenated_ranges(first, last)
            vectors = np.asarray(segment.sentence_vectors[gathered], dtype=np.float32)
            best[positions[filled]] = np.maximum.reduceat(vectors @ query_vector, places)
        return best

    @property
    def embedder_id(self) -> str:
        return self.manifest["embedder_id"]

    @property
    def path(self) -> Path:
        return self.index_dir / VERSIONS / self.version

    def connect(self):
        """The metadata of a version of one segment (tests and tools)."""
        if len(self.segments) != 1:
            raise ValueError("connect() needs a version of one segment")
        return meta.connect(self.segments[0].folder / "meta.sqlite")

    def document(self, doc_id: str) -> meta.DocumentInfo | None:
        return self._documents_by_id.get(doc_id)

    def paragraphs(self, doc_id: str, first: int, last: int) -> list[meta.ParagraphRecord]:
        segment = self._segment_of_document.get(doc_id)
        if segment is None:
            return []
        db = meta.connect(segment.folder / "meta.sqlite")
        try:
            return meta.read_paragraphs(db, doc_id, first, last)
        finally:
            db.close()


SENTENCE_OFFSETS = "sentence_offsets.npy"


def _term_ids(segment: Segment, terms: tuple[str, ...]) -> np.ndarray:
    """The segment's vocabulary ids of ``terms``; -2 (no token's id) for one it never uses."""
    vocabulary = segment.bm25.vocabulary
    return np.array([vocabulary.get(t, -2) for t in terms], dtype=np.int32)


def _plain(array: np.ndarray) -> np.ndarray:
    return array.view(np.ndarray) if isinstance(array, np.memmap) else array


def sentence_offsets(sentence_spans: np.ndarray, passages: int) -> np.ndarray:
    """Where each passage's sentences start in the spans (ordered by passage row), and
    where the last one ends: (passages + 1,) int64."""
    counts = np.bincount(np.asarray(sentence_spans[:, 0]), minlength=passages)
    offsets = np.zeros(passages + 1, dtype=np.int64)
    np.cumsum(counts[:passages], out=offsets[1:])
    return offsets


def _check_compatible(index_dir: Path, manifest: dict, embedder_id: str | None) -> None:
    if manifest.get("format") != FORMAT:
        raise IndexMismatchError(
            f"chỉ mục trong {index_dir} có định dạng cũ; hãy tạo lại bằng lệnh: qabot index build"
        )
    if embedder_id is not None and manifest.get("embedder_id") != embedder_id:
        raise IndexMismatchError(
            f"chỉ mục trong {index_dir} được tạo bằng mô hình {manifest.get('embedder_id')!r}, "
            f"còn lần chạy này dùng {embedder_id!r}. Hãy dùng cùng mô hình (QABOT_EMBEDDER) "
            f"hoặc tạo lại chỉ mục bằng lệnh: qabot index build --index {index_dir}"
        )


def open_version(
    index_dir: Path,
    version: str,
    embedder_id: str | None = None,
    previous: LoadedIndex | None = None,
) -> LoadedIndex:
    """Load one version after checking its files and its segments'; IndexDamagedError says
    what is wrong. Segments ``previous`` (the version served until now) holds are shared
    with it, and their files' checksums, verified when it was opened, are not read again
    (their sizes are): a hot reload after adding a report reads that report's segment."""
    reuse = {s.id: s for s in previous.segments} if previous is not None else {}
    lease = hold_version(index_dir, version)
    try:
        manifest = read_manifest(index_dir, version)
        _check_compatible(index_dir, manifest, embedder_id)
        problems = verify_version(index_dir, version, verified=frozenset(reuse), stamps=True)
        if problems:
            raise IndexDamagedError(
                f"phiên bản chỉ mục {version} bị hỏng: "
                + "; ".join(p.describe() for p in problems),
                [VersionDamage(version, tuple(problems))],
            )
        folder = index_dir / VERSIONS / version
        try:
            segments = _open_segments(index_dir, manifest, reuse)
            # A version written without restore.npz gets its statistics from its passages.
            restore_stats = RestoreStats.load(folder) or RestoreStats.from_texts(
                p.indexed_text for s in segments for p in s.passages
            )
            stats = GlobalStats.of(manifest["bm25"])
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            EOFError,
            RuntimeError,
            sqlite3.Error,
        ) as exc:
            # Files that pass their checksums but that their readers refuse: written by a
            # broken build.
            problem = Problem("?", "unreadable", f"{type(exc).__name__}: {exc}"[:200])
            raise IndexDamagedError(
                f"phiên bản chỉ mục {version} bị hỏng: {problem.describe()}",
                [VersionDamage(version, (problem,))],
            ) from None
    except BaseException:
        if lease is not None:
            lease.close()
        raise
    documents = sorted(
        (d for s in segments for d in s.documents),
        key=lambda d: (d.date is None, d.date or "", d.doc_id),
    )
    whole = len(segments) == 1 and segments[0].deleted is None
    if whole:
        passages, vectors, bm25 = segments[0].passages, segments[0].vectors, segments[0].bm25
    else:
        passages = SegmentedPassages(segments)
        vectors = SegmentedVectors(segments, int(manifest.get("dim") or 0))
        bm25 = SegmentedBM25(
            [s.bm25 for s in segments],
            [s.start for s in segments],
            [s.deleted for s in segments],
            stats,
        )
    return LoadedIndex(
        index_dir=index_dir,
        version=version,
        manifest=manifest,
        segments=tuple(segments),
        passages=passages,
        documents=documents,
        vectors=vectors,
        bm25=bm25,
        restorer=Restorer(restore_stats),
        lease=lease,
    )


def _open_segments(
    index_dir: Path, manifest: dict, reuse: dict[str, Segment] | None = None
) -> list[Segment]:
    """The version's segments; those in ``reuse`` (the previous version's, by id) share
    their open files, maps and FAISS index: segments never change once written."""
    segments, start = [], 0
    for entry in version_segments(manifest):
        folder = segment_folder(index_dir, entry["id"])
        shared = (reuse or {}).get(entry["id"])
        deleted_documents = set(entry.get("deleted", []))
        db = meta.connect(folder / "meta.sqlite")
        try:
            documents = [
                d
                for d in meta.segment_documents(folder / "meta.sqlite")
                if d.doc_id not in deleted_documents
            ]
            deleted = None
            if deleted_documents:
                deleted = np.zeros(int(entry["passages"]), dtype=bool)
                for doc_id in deleted_documents:
                    rows = db.execute("SELECT row FROM passages WHERE doc_id = ?", (doc_id,))
                    deleted[[r for (r,) in rows]] = True
        finally:
            db.close()
        if shared is not None:
            segments.append(
                replace(
                    shared,
                    start=start,
                    documents=documents,
                    deleted=deleted,
                    deleted_rows=int(deleted.sum()) if deleted is not None else 0,
                )
            )
            start += len(shared.passages)
            continue
        passages = meta.PassageStore(folder / "meta.sqlite")
        spans, sentence_vectors = load_sentences(folder)
        vectors = load_vector_index(folder / "vectors.faiss")
        bm25 = BM25Index.load(folder)
        if (
            vectors.ntotal != len(passages)
            or len(spans) != len(sentence_vectors)
            or bm25.n_docs != len(passages)
            or len(passages) != int(entry["passages"])
        ):
            raise ValueError(f"segment {entry['id']}: số đoạn trích giữa các tệp không khớp")
        segments.append(
            Segment(
                id=entry["id"],
                folder=folder,
                start=start,
                passages=passages,
                documents=documents,
                vectors=vectors,
                bm25=bm25,
                sentence_spans=spans,
                sentence_vectors=sentence_vectors,
                sentence_offsets=np.load(folder / SENTENCE_OFFSETS, mmap_mode="r"),
                deleted=deleted,
                deleted_rows=int(deleted.sum()) if deleted is not None else 0,
                tokens=SentenceTokens.load(folder, len(spans)),
                periods=PassagePeriods.load(folder, len(passages)),
            )
        )
        start += len(passages)
    return segments


def open_index(
    index_dir: Path, embedder_id: str | None = None, previous: LoadedIndex | None = None
) -> LoadedIndex:
    """The live version, or when it is damaged the newest older good version (logged, and
    named in ``LoadedIndex.damaged``)."""
    live = current_version(index_dir)
    candidates = list_versions(index_dir)
    if live is None and not candidates:
        raise IndexMissingError(no_index_in(index_dir))
    damaged: list[VersionDamage] = []
    pointer = pointer_problem(index_dir)
    if pointer is not None:
        damaged.append(VersionDamage(pointer.file, (pointer,)))
        log.error("index %s: %s", index_dir, pointer.describe())
    older = [v for v in candidates if live is None or v < live]
    for version in ([live] if live else []) + older:
        started = time.perf_counter()
        try:
            index = open_version(index_dir, version, embedder_id, previous)
        except IndexMismatchError:
            if version == live:
                raise
            continue  # an older version for another embedder cannot stand in
        except IndexDamagedError as exc:
            log.error("index version %s is damaged: %s", version, exc.damage[0].summary())
            damaged.extend(exc.damage)
            continue
        log.debug("opened index version %s in %.3f s", version, time.perf_counter() - started)
        if damaged:
            log.warning("serving index version %s in place of a damaged one", version)
            index.damaged = tuple(damaged)
        return index
    raise IndexDamagedError(
        f"chỉ mục trong {index_dir} bị hỏng và không còn phiên bản tốt nào; hãy tạo lại bằng "
        f"lệnh: qabot index build --index {index_dir} (xem chi tiết: qabot index verify)",
        damaged,
    )


def version_documents(index_dir: Path, manifest: dict) -> dict[str, tuple[str, meta.DocumentInfo]]:
    """doc id -> (segment id, its DocumentInfo) of every document a version holds."""
    out = {}
    for entry in version_segments(manifest):
        deleted = set(entry.get("deleted", []))
        for document in meta.segment_documents(
            segment_folder(index_dir, entry["id"]) / "meta.sqlite"
        ):
            if document.doc_id not in deleted:
                out[document.doc_id] = (entry["id"], document)
    return out


def live_documents(index_dir: Path) -> dict[str, str] | None:
    """doc id -> content hash of what the live version holds; None when there is no whole
    live version to ask (callers then treat the docs folder as the truth)."""
    live = current_version(index_dir)
    if live is None or verify_version(index_dir, live, hashes=False):
        return None
    try:
        manifest = read_manifest(index_dir, live)
        if "segments" not in manifest:  # a version from before segments: not readable here
            return None
        held = version_documents(index_dir, manifest)
    except (sqlite3.Error, IndexDamagedError, KeyError, TypeError):
        return None
    return {doc_id: info.content_hash for doc_id, (_, info) in held.items()}
