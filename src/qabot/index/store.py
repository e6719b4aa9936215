"""Versioned index folders: layout, the CURRENT pointer, the writer lock, loading.

    <index dir>/
      CURRENT                  name of the live version (replaced atomically)
      versions/<name>/         manifest.json, meta.sqlite, vectors.faiss, bm25.npz, ...
      embedding_cache.sqlite   vectors by (embedder id, text hash), shared by versions
      build.lock               held by the one writer

A build writes a new folder beside the live one and only then swaps CURRENT, so a build
killed at any moment leaves the previous version whole and live.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from qabot.index import meta
from qabot.index.bm25 import BM25Index, term_sets
from qabot.index.vectors import load_sentences, load_vector_index
from qabot.passages import Passage
from qabot.restore import Restorer, RestoreStats

FORMAT = 2
CURRENT = "CURRENT"
VERSIONS = "versions"
CACHE = "embedding_cache.sqlite"
LOCK = "build.lock"
KEEP_VERSIONS = 2


class IndexStoreError(Exception):
    """Base for index problems that users can act on; the message says how."""


class IndexMissingError(IndexStoreError):
    pass


class IndexMismatchError(IndexStoreError):
    pass


class IndexBusyError(IndexStoreError):
    pass


def current_version(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return name if name and (index_dir / VERSIONS / name / "manifest.json").is_file() else None


def read_manifest(index_dir: Path, version: str) -> dict:
    return json.loads((index_dir / VERSIONS / version / "manifest.json").read_text())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_version(index_dir: Path, staging: Path, name: str) -> None:
    """Move a finished staging folder into place, then point CURRENT at it."""
    for item in staging.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())
    final = index_dir / VERSIONS / name
    os.replace(staging, final)
    _fsync_dir(index_dir / VERSIONS)
    pointer = index_dir / f".{CURRENT}.tmp"
    with open(pointer, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, index_dir / CURRENT)
    _fsync_dir(index_dir)


def prune_versions(index_dir: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the live one) and stale staging."""
    versions_dir = index_dir / VERSIONS
    if not versions_dir.is_dir():
        return []
    live = current_version(index_dir)
    finished = sorted(
        (p for p in versions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    doomed = [p for p in finished[:-keep] if p.name != live] if keep else []
    doomed += [p for p in versions_dir.iterdir() if p.name.startswith(".")]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in doomed]


def new_version_name() -> str:
    # Sortable by time; the suffix keeps two builds in one second apart.
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid() % 100000:05d}"


@contextlib.contextmanager
def writer_lock(index_dir: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the index folder's writer lock; raise IndexBusyError if another writer has it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    handle = open(index_dir / LOCK, "a+")  # noqa: SIM115 - held for the whole block
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"một tiến trình khác đang cập nhật chỉ mục trong {index_dir}; "
                        "hãy đợi tiến trình đó xong (hoặc dùng --wait) rồi thử lại"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        handle.close()


@dataclass
class LoadedIndex:
    """One index version, read into memory for searching."""

    index_dir: Path
    version: str
    manifest: dict
    passages: list[Passage]
    documents: list[meta.DocumentInfo]
    vectors: faiss.Index
    bm25: BM25Index
    sentence_spans: np.ndarray  # (n, 3): passage row, start, end; ordered by passage row
    sentence_vectors: np.ndarray  # (n, dim), float16, memory-mapped
    restorer: Restorer | None = None  # diacritics of questions typed without them

    _cache: dict = field(default_factory=dict, repr=False)  # derived lookups, lazily

    def sentence_terms(self, row: int, folded: bool) -> list[tuple[frozenset[str], frozenset[str]]]:
        """Per sentence of a passage: its syllables and syllable bigrams (folded: "~dang").

        Cached, since ranking and answer extraction look at the same few passages often.
        """
        key = (row, folded)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            text = self.passages[row].text
            spans, _ = self.sentences_of(row)
            cached = [term_sets(text[s:e], folded) for s, e in spans.tolist()]
            self._cache[key] = cached
        return cached

    def header_terms(self, row: int, folded: bool) -> frozenset[str]:
        """Syllables of a passage's context header (title, date): context for every sentence."""
        key = ("header", self.passages[row].doc_id, folded)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = term_sets(self.passages[row].header, folded)[0]
        return cached

    def sentences_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Spans (start, end) and vectors of one passage's sentences."""
        rows = self.sentence_spans[:, 0]
        lo, hi = np.searchsorted(rows, row, "left"), np.searchsorted(rows, row, "right")
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
        by_id = self._cache.get("documents")
        if by_id is None:  # built on first use; every cited passage looks its document up
            by_id = self._cache["documents"] = {d.doc_id: d for d in self.documents}
        return by_id.get(doc_id)

    def paragraphs(self, doc_id: str, first: int, last: int) -> list[meta.ParagraphRecord]:
        db = self.connect()
        try:
            return meta.read_paragraphs(db, doc_id, first, last)
        finally:
            db.close()


def open_index(index_dir: Path, embedder_id: str | None = None) -> LoadedIndex:
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(
            f"chưa có chỉ mục trong {index_dir}; hãy tạo bằng lệnh: "
            f"qabot index build --index {index_dir}"
        )
    manifest = read_manifest(index_dir, version)
    if manifest.get("format") != FORMAT:
        raise IndexMismatchError(
            f"chỉ mục trong {index_dir} có định dạng cũ; hãy tạo lại bằng lệnh: qabot index build"
        )
    if embedder_id is not None and manifest["embedder_id"] != embedder_id:
        raise IndexMismatchError(
            f"chỉ mục trong {index_dir} được tạo bằng mô hình {manifest['embedder_id']!r}, "
            f"còn lần chạy này dùng {embedder_id!r}. Hãy dùng cùng mô hình (QABOT_EMBEDDER) "
            f"hoặc tạo lại chỉ mục bằng lệnh: qabot index build --index {index_dir}"
        )
    folder = index_dir / VERSIONS / version
    db = meta.connect(folder / "meta.sqlite")
    try:
        passages = meta.read_passages(db)
        documents = meta.read_documents(db)
    finally:
        db.close()
    sentence_spans, sentence_vectors = load_sentences(folder)
    # A version built before restore.npz existed gets its statistics from its passages.
    restore_stats = RestoreStats.load(folder) or RestoreStats.from_texts(
        p.indexed_text for p in passages
    )
    return LoadedIndex(
        index_dir=index_dir,
        version=version,
        manifest=manifest,
        passages=passages,
        documents=documents,
        vectors=load_vector_index(folder / "vectors.faiss"),
        bm25=BM25Index.load(folder),
        sentence_spans=sentence_spans,
        sentence_vectors=sentence_vectors,
        restorer=Restorer(restore_stats),
    )
