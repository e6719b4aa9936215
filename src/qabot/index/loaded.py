"""One index version read into memory for searching, and how a version is chosen to open.

open_index serves the live version when it is whole; when it is damaged (checksums, a
missing file, a file its reader refuses), it logs what is wrong and serves the newest good
version instead, so a damaged file never stops the service.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generic, TypeVar

import faiss
import numpy as np

from qabot.errors import IndexDamagedError, IndexMismatchError, IndexMissingError
from qabot.index import meta
from qabot.index.bm25 import BM25Index
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
    verify_version,
)
from qabot.index.vectors import load_sentences, load_vector_index
from qabot.messages import no_index_in
from qabot.passages import Passage
from qabot.restore import Restorer, RestoreStats
from qabot.terms import term_sets

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
        # Another thread may have evicted it meanwhile: the value is still right.
        with contextlib.suppress(KeyError):
            self._items.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class DerivedCache:
    """Lookups derived from a loaded version, computed on first use."""

    # Per (passage row, folded): its sentences' term sets. Ranking and answer extraction
    # look at the same few passages often. Bounded: an entry is a few kilobytes.
    sentence_terms: LruCache[tuple[int, bool], SentenceTerms] = field(
        default_factory=lambda: LruCache(20_000)
    )

    # Per (passage row, folded): every syllable and bigram of the passage and its header.
    passage_terms: LruCache[tuple[int, bool], tuple[frozenset[str], frozenset[str]]] = field(
        default_factory=lambda: LruCache(20_000)
    )
    # Per (document id, folded): the syllables of the context header (title, date).
    header_terms: LruCache[tuple[str, bool], frozenset[str]] = field(
        default_factory=lambda: LruCache(20_000)
    )
    # Per (document id, folded): the syllables and bigrams of its subject (qabot.subject).
    subject_terms: LruCache[tuple[str, bool], tuple[frozenset[str], frozenset[str]]] = field(
        default_factory=lambda: LruCache(20_000)
    )


@dataclass
class LoadedIndex:
    """One index version, read into memory for searching.

    New per-version data (statistics, models) goes in as fields with defaults, so that
    open_index and tests that build one by hand keep working.
    """

    index_dir: Path
    version: str
    manifest: dict
    passages: Sequence[Passage]  # meta.PassageStore when opened from disk: read on demand
    documents: list[meta.DocumentInfo]
    vectors: faiss.Index
    bm25: BM25Index
    sentence_spans: np.ndarray  # (n, 3): passage row, start, end; ordered by passage row
    sentence_vectors: np.ndarray  # (n, dim), float16, memory-mapped
    restorer: Restorer | None = None  # diacritics of questions typed without them
    # Newer versions that were damaged when this one was opened in their place, newest first.
    damaged: tuple[VersionDamage, ...] = ()
    cache: DerivedCache = field(default_factory=DerivedCache, repr=False)
    # The shared lock that keeps builds from pruning this version while it is served;
    # released when the index is garbage collected.
    lease: IO | None = field(default=None, repr=False, compare=False)
    # (n + 1,): passage row r's sentences are rows [offsets[r], offsets[r + 1]) of
    # sentence_spans and sentence_vectors; derived from the spans when not given.
    sentence_offsets: np.ndarray | None = field(default=None, repr=False)
    _documents_by_id: dict[str, meta.DocumentInfo] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._documents_by_id = {d.doc_id: d for d in self.documents}
        if self.sentence_offsets is None:
            self.sentence_offsets = sentence_offsets(self.sentence_spans, len(self.passages))
        # Plain ndarray views of the mapped files: every slice of a memmap subclass runs its
        # __array_finalize__, tens of thousands of times a second on a busy server.
        self.sentence_spans = _plain(self.sentence_spans)
        self.sentence_vectors = _plain(self.sentence_vectors)
        self.sentence_offsets = _plain(self.sentence_offsets)

    def sentence_terms(self, row: int, folded: bool) -> SentenceTerms:
        """Per sentence of a passage: its syllables and syllable bigrams (folded: "~dang")."""

        def make() -> SentenceTerms:
            text = self.passages[row].text
            spans, _ = self.sentences_of(row)
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

    def header_terms(self, row: int, folded: bool) -> frozenset[str]:
        """Syllables of a passage's context header (title, date): context for every sentence."""
        passage = self.passages[row]
        return self.cache.header_terms.get(
            (passage.doc_id, folded), lambda: term_sets(passage.header, folded)[0]
        )

    def subject_terms(self, doc_id: str, folded: bool) -> tuple[frozenset[str], frozenset[str]]:
        """Syllables and bigrams of a document's subject (qabot.subject): the names every
        passage of it inherits."""

        def make() -> tuple[frozenset[str], frozenset[str]]:
            info = self.document(doc_id)
            return term_sets(info.subject if info is not None else "", folded)

        return self.cache.subject_terms.get((doc_id, folded), make)

    def sentences_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Spans (start, end) and vectors of one passage's sentences."""
        lo, hi = int(self.sentence_offsets[row]), int(self.sentence_offsets[row + 1])
        return self.sentence_spans[lo:hi, 1:], np.asarray(
            self.sentence_vectors[lo:hi], dtype=np.float32
        )

    @property
    def embedder_id(self) -> str:
        return self.manifest["embedder_id"]

    @property
    def path(self) -> Path:
        return self.index_dir / VERSIONS / self.version

    def connect(self):
        return meta.connect(self.path / "meta.sqlite")

    def document(self, doc_id: str) -> meta.DocumentInfo | None:
        return self._documents_by_id.get(doc_id)

    def paragraphs(self, doc_id: str, first: int, last: int) -> list[meta.ParagraphRecord]:
        db = self.connect()
        try:
            return meta.read_paragraphs(db, doc_id, first, last)
        finally:
            db.close()


SENTENCE_OFFSETS = "sentence_offsets.npy"


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


def open_version(index_dir: Path, version: str, embedder_id: str | None = None) -> LoadedIndex:
    """Load one version after checking its files; IndexDamagedError says what is wrong."""
    lease = hold_version(index_dir, version)
    try:
        manifest = read_manifest(index_dir, version)
        _check_compatible(index_dir, manifest, embedder_id)
        problems = verify_version(index_dir, version)
        if problems:
            raise IndexDamagedError(
                f"phiên bản chỉ mục {version} bị hỏng: "
                + "; ".join(p.describe() for p in problems),
                [VersionDamage(version, tuple(problems))],
            )
        folder = index_dir / VERSIONS / version
        try:
            db = meta.connect(folder / "meta.sqlite")
            try:
                documents = meta.read_documents(db)
            finally:
                db.close()
            passages = meta.PassageStore(folder / "meta.sqlite")
            sentence_spans, sentence_vectors = load_sentences(folder)
            offsets = None
            if (folder / SENTENCE_OFFSETS).exists():  # versions before it: derived from spans
                offsets = np.load(folder / SENTENCE_OFFSETS, mmap_mode="r")
            vectors = load_vector_index(folder / "vectors.faiss")
            bm25 = BM25Index.load(folder)
            # A version built before restore.npz existed gets its statistics from its passages.
            restore_stats = RestoreStats.load(folder) or RestoreStats.from_texts(
                p.indexed_text for p in passages
            )
        except (OSError, ValueError, KeyError, EOFError, RuntimeError, sqlite3.Error) as exc:
            # Files that pass their checksums but that their readers refuse: a version
            # written before checksums existed, or written by a broken build.
            problem = Problem("?", "unreadable", f"{type(exc).__name__}: {exc}"[:200])
            raise IndexDamagedError(
                f"phiên bản chỉ mục {version} bị hỏng: {problem.describe()}",
                [VersionDamage(version, (problem,))],
            ) from None
        if vectors.ntotal != len(passages) or (
            len(sentence_spans) != len(sentence_vectors) or bm25.n_docs != len(passages)
        ):
            problem = Problem("?", "unreadable", "số đoạn trích giữa các tệp không khớp")
            raise IndexDamagedError(
                f"phiên bản chỉ mục {version} bị hỏng: {problem.describe()}",
                [VersionDamage(version, (problem,))],
            )
    except BaseException:
        if lease is not None:
            lease.close()
        raise
    return LoadedIndex(
        index_dir=index_dir,
        version=version,
        manifest=manifest,
        passages=passages,
        documents=documents,
        vectors=vectors,
        bm25=bm25,
        sentence_spans=sentence_spans,
        sentence_vectors=sentence_vectors,
        restorer=Restorer(restore_stats),
        lease=lease,
        sentence_offsets=offsets,
    )


def open_index(index_dir: Path, embedder_id: str | None = None) -> LoadedIndex:
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
            index = open_version(index_dir, version, embedder_id)
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


def live_documents(index_dir: Path) -> dict[str, str] | None:
    """doc id -> content hash of what the live version holds; None when there is no whole
    live version to ask (callers then treat the docs folder as the truth)."""
    live = current_version(index_dir)
    if live is None or verify_version(index_dir, live, hashes=False):
        return None
    try:
        db = meta.connect(index_dir / VERSIONS / live / "meta.sqlite")
        try:
            return {d.doc_id: d.content_hash for d in meta.read_documents(db)}
        finally:
            db.close()
    except sqlite3.Error:
        return None
