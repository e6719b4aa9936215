"""Incremental, atomic index builds.

Only new or changed files are cleaned, split and embedded; unchanged documents are copied
from the live version; vectors come from the embedding cache when their text was seen.
A build always ends with a whole version when the documents allow one: a file that cannot
be read is skipped and reported, a damaged live version is not copied from (everything is
read again), and a damaged embedding cache is set aside and rebuilt.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qabot import lexicon
from qabot.embedding import Embedder
from qabot.errors import IndexDamagedError
from qabot.index import meta
from qabot.index.bm25 import BM25Writer
from qabot.index.cache import EmbeddingCache, text_hash
from qabot.index.layout import (
    CACHE,
    FORMAT,
    VERSIONS,
    current_version,
    new_version_name,
    prune_versions,
    publish_version,
    read_manifest,
    verify_version,
    writer_lock,
)
from qabot.index.loaded import SENTENCE_OFFSETS, sentence_offsets
from qabot.index.vectors import build_vector_index, save_sentences, save_vector_index
from qabot.ingest import IngestError, content_hash, discover, doc_id_for, load_document
from qabot.passages import PassageConfig, split_document
from qabot.restore import RestoreStats
from qabot.text import sentence_units

log = logging.getLogger(__name__)

# Bump when cleaning or splitting changes, so every document is processed again.
PIPELINE_VERSION = "5"
# Bump when what meta.DocumentRows derives per document (qabot.subject) changes: rows are
# then derived again, without touching passages, vectors or the pipeline fingerprint.
DOCUMENT_VERSION = "1"
# Texts looked up in the embedding cache at a time: a build holds one block's vectors and
# hashes, not the corpus's.
CACHE_BLOCK = 20_000

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Hook = Callable[[], None]


@dataclass
class SkippedFile:
    source: str
    reason: str


@dataclass
class BuildSummary:
    documents: int = 0
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: int = 0
    seconds: float = 0.0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    version: str | None = None
    published: bool = False
    skipped_files: list[SkippedFile] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


def pipeline_fingerprint(config: PassageConfig) -> str:
    # BM25 stores each term's general-language prior, so new rarity settings rebuild too.
    return f"pipeline{PIPELINE_VERSION}-{config.fingerprint()}-lexicon{lexicon.fingerprint()}"


def build_index(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: PassageConfig | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
    before_scan: Hook | None = None,
) -> BuildSummary:
    """Bring the index in ``index_dir`` up to date with ``docs_dir``. ``before_scan`` runs
    under the writer lock before the folder is read (the library's journal recovery)."""
    config = config or PassageConfig()
    progress = progress or (lambda stage, done, total: None)
    started = time.monotonic()
    with writer_lock(index_dir, wait_seconds):
        if before_scan is not None:
            before_scan()
        summary = _build_locked(docs_dir, index_dir, embedder, config, progress)
    summary.seconds = time.monotonic() - started
    return summary


def _build_locked(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: PassageConfig,
    progress: Progress,
) -> BuildSummary:
    summary = BuildSummary()
    (index_dir / VERSIONS).mkdir(parents=True, exist_ok=True)
    prune_versions(index_dir)  # clears staging folders a killed build left behind

    name = new_version_name()
    while (index_dir / VERSIONS / name).exists():
        time.sleep(1.0)
        name = new_version_name()
    # Rows go to the new version's metadata as documents are read, so a build holds no
    # document's text longer than it takes to read it; a build that publishes nothing (or
    # is killed) leaves only this staging folder, which the next build clears.
    staging = index_dir / VERSIONS / f".{name}.tmp"
    staging.mkdir()
    try:
        published = _build_into(
            staging, name, docs_dir, index_dir, embedder, config, progress, summary
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not published:
        shutil.rmtree(staging, ignore_errors=True)
        return summary
    prune_versions(index_dir)
    summary.version = name
    summary.published = True
    log.info(
        "index version %s: %d documents, %d passages (%d embedded)",
        name,
        summary.documents,
        summary.passages,
        summary.embedded,
    )
    return summary


def _build_into(
    staging: Path,
    name: str,
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: PassageConfig,
    progress: Progress,
    summary: BuildSummary,
) -> bool:
    """Write a version into ``staging`` and publish it; False (and summary.version the live
    version) when the live version already holds the documents."""
    fingerprint = pipeline_fingerprint(config)
    rows = meta.MetaWriter(staging / "meta.sqlite")
    flat = array("i")  # (passage row, start, end) of every sentence
    live, live_manifest, live_db, live_docs = _live_rows(index_dir)
    try:
        reusable = bool(
            live_manifest
            and live_manifest.get("format") == FORMAT
            and live_manifest.get("embedder_id") == embedder.id
            and live_manifest.get("pipeline") == fingerprint
            and live_manifest.get("documents_derived") == DOCUMENT_VERSION
        )

        files = list(discover(docs_dir)) if docs_dir.is_dir() else []
        if not docs_dir.is_dir():
            log.warning("docs folder %s does not exist; building an empty index", docs_dir)
        seen: set[str] = set()
        for number, path in enumerate(files, start=1):
            progress("reading", number, len(files))
            doc_id = doc_id_for(path, docs_dir)
            seen.add(doc_id)
            try:
                data_hash = content_hash(path.read_bytes())
            except OSError as exc:
                summary.skipped_files.append(
                    SkippedFile(doc_id, f"không đọc được tệp ({exc.strerror})")
                )
                continue
            old = live_docs.get(doc_id)
            document_rows = None
            if reusable and old is not None and old.content_hash == data_hash:
                try:
                    document_rows = meta.read_document_rows(live_db, doc_id)
                except sqlite3.Error as exc:  # read it from its file instead
                    log.warning("live index rows of %s unreadable (%s)", doc_id, exc)
                    reusable = False
            if document_rows is not None:
                summary.unchanged += 1
            else:
                try:
                    document = load_document(path, docs_dir)
                    document_rows = meta.DocumentRows.from_document(
                        document, split_document(document, config)
                    )
                except IngestError as exc:
                    log.warning("skipping %s: %s", doc_id, exc)
                    summary.skipped_files.append(SkippedFile(doc_id, str(exc)))
                    continue
                except Exception as exc:  # one file's bug must not stop every later build
                    log.exception("skipping %s: reading it failed unexpectedly", doc_id)
                    reason = f"không đọc được tệp (lỗi {type(exc).__name__})"
                    summary.skipped_files.append(SkippedFile(doc_id, reason))
                    continue
                if old is None:
                    summary.added += 1
                else:
                    summary.changed += 1
            # Sentence units let the ranker and the short answer see which sentence answers.
            for passage in document_rows.passages:
                for start, end in sentence_units(passage.text):
                    flat.extend((summary.passages, start, end))
                summary.passages += 1
            rows.add(document_rows)
            summary.documents += 1
        summary.removed = len(set(live_docs) - seen)
        summary.skipped = len(summary.skipped_files)
    finally:
        if live_db is not None:
            live_db.close()
        rows.close()

    # From here on passages are streamed back from the new metadata, never all held.
    store = meta.PassageStore(staging / "meta.sqlite", cache_size=0)
    try:
        return _write_version(
            staging,
            name,
            store,
            flat,
            live,
            live_manifest,
            reusable,
            index_dir,
            embedder,
            fingerprint,
            progress,
            summary,
        )
    finally:
        store.close()


def _write_version(
    staging: Path,
    name: str,
    store: meta.PassageStore,
    flat: array,
    live: str | None,
    live_manifest: dict | None,
    reusable: bool,
    index_dir: Path,
    embedder: Embedder,
    fingerprint: str,
    progress: Progress,
    summary: BuildSummary,
) -> bool:
    passages = len(store)
    vectors, summary.embedded = _vectors_for(
        (p.indexed_text for p in store), passages, index_dir, embedder, progress
    )
    summary.reused = passages - summary.embedded
    sentences = np.frombuffer(flat, dtype=np.int32).reshape(-1, 3)
    offsets = sentence_offsets(sentences, passages)

    def sentence_texts() -> Iterator[str]:
        for row, passage in enumerate(store):
            for start, end in sentences[offsets[row] : offsets[row + 1], 1:].tolist():
                yield passage.text[start:end]

    # Half precision as stored: the largest array of a build.
    sentence_vectors, _ = _vectors_for(
        sentence_texts(), len(sentences), index_dir, embedder, progress, dtype=np.float16
    )

    # A version from before checksums existed is sealed again by publishing a fresh copy.
    sealed = bool(live_manifest and isinstance(live_manifest.get("files"), dict))
    nothing_changed = (
        reusable and sealed and not (summary.added or summary.changed or summary.removed)
    )
    if nothing_changed:
        summary.version = live
        return False

    progress("writing", 0, 1)
    save_vector_index(build_vector_index(vectors), staging / "vectors.faiss")
    del vectors
    save_sentences(staging, sentences, sentence_vectors)
    del sentence_vectors
    np.save(staging / SENTENCE_OFFSETS, offsets)
    bm25 = BM25Writer(staging)
    for passage in store:
        bm25.add(passage.indexed_text)
    bm25.close()
    # Names of a newly added report ("Tràng Duệ") are restored from the next version on.
    RestoreStats.from_texts(p.indexed_text for p in store).save(staging)
    manifest = {
        "format": FORMAT,
        "version": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder_id": embedder.id,
        "dim": embedder.dim,
        "pipeline": fingerprint,
        "documents_derived": DOCUMENT_VERSION,
        "documents": summary.documents,
        "passages": summary.passages,
        "skipped": [asdict(s) for s in summary.skipped_files],
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    publish_version(index_dir, staging, name)
    progress("writing", 1, 1)
    return True


def _live_rows(index_dir: Path):
    """The live version's name, manifest, open metadata and documents, when it is whole
    enough to copy rows from; else (None, None, None, {}) so that every file is read again."""
    live = current_version(index_dir)
    if live is None:
        return None, None, None, {}
    problems = verify_version(index_dir, live)
    if problems:
        log.warning(
            "live index version %s is damaged (%s); reading every document again",
            live,
            "; ".join(f"{p.file}: {p.kind}" for p in problems),
        )
        return None, None, None, {}
    db = None
    try:
        manifest = read_manifest(index_dir, live)
        db = meta.connect(index_dir / VERSIONS / live / "meta.sqlite")
        documents = {d.doc_id: d for d in meta.read_documents(db)}
    except (IndexDamagedError, sqlite3.Error) as exc:
        log.warning("live index version %s cannot be read (%s); reading every document", live, exc)
        if db is not None:
            db.close()
        return None, None, None, {}
    return live, manifest, db, documents


def _vectors_for(
    texts: Iterable[str],
    count: int,
    index_dir: Path,
    embedder: Embedder,
    progress: Progress,
    batch: int = 16,
    dtype: type = np.float32,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` from the cache, embedding (and caching) only the missing ones.
    A damaged cache is moved aside and a new one started: it only ever saves time."""
    texts = iter(texts)
    out = np.zeros((count, embedder.dim), dtype=dtype)
    done = embedded = 0
    retried = False
    while done < count:
        block = list(itertools.islice(texts, CACHE_BLOCK))
        try:
            embedded += _vectors_from_cache(block, out[done:], index_dir, embedder, progress, batch)
        except sqlite3.DatabaseError as exc:
            if retried:
                raise
            retried = True
            aside = set_cache_aside(index_dir, str(exc))
            log.warning(
                "embedding cache was damaged (%s); moved to %s, rebuilding", exc, aside.name
            )
            embedded += _vectors_from_cache(block, out[done:], index_dir, embedder, progress, batch)
        done += len(block)
    return out, embedded


def set_cache_aside(index_dir: Path, reason: str) -> Path:
    """Move a damaged embedding cache (and its WAL files) out of the way."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = index_dir / f"{CACHE}.damaged-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        source = index_dir / f"{CACHE}{suffix}"
        if source.exists():
            source.replace(index_dir / f"{aside.name}{suffix}")
    return aside


def _vectors_from_cache(
    texts: list[str],
    out: np.ndarray,
    index_dir: Path,
    embedder: Embedder,
    progress: Progress,
    batch: int,
) -> int:
    """Fill out[: len(texts)] with the texts' vectors; the number of texts embedded."""
    cache = EmbeddingCache(index_dir / CACHE)
    try:
        hashes = [text_hash(t) for t in texts]
        known = cache.get_many(embedder.id, hashes, embedder.dim)
        missing = list(dict.fromkeys(h for h in hashes if h not in known))
        text_of = dict(zip(hashes, texts, strict=True))
        for start in range(0, len(missing), batch):
            progress("embedding", start, len(missing))
            chunk = missing[start : start + batch]
            fresh = embedder.embed_passages([text_of[h] for h in chunk])
            new = dict(zip(chunk, fresh, strict=True))
            cache.put_many(embedder.id, new)  # committed per batch: a killed build keeps them
            known.update(new)
        if missing:
            progress("embedding", len(missing), len(missing))
    finally:
        cache.close()
    for i, h in enumerate(hashes):
        out[i] = known[h]
    return len(missing)
