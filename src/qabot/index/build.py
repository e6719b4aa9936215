"""Incremental, atomic index builds by segments.

Only new or changed files are cleaned, split and embedded, into one new segment; unchanged
documents stay in the live version's segments, untouched; removed or changed documents
become tombstones of their old segment (qabot.index.layout). Segments merge as in Lucene's
tiered policy (merge_choice): a segment with more than MAX_DELETED_SHARE of its rows
deleted, and, when the version would have more than MAX_SEGMENTS segments, the smallest
ones, are rewritten into the new segment (rows copied from the old segments, vectors from
the embedding cache), so a large segment is rewritten only when its own deletions call for
it: adding a report to a million passages never rewrites the million.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qabot import lexicon
from qabot.embedding import Embedder
from qabot.errors import IndexDamagedError
from qabot.index import meta
from qabot.index.bm25 import BM25Writer, global_stats
from qabot.index.cache import EmbeddingCache, text_hash
from qabot.index.layout import (
    CACHE,
    FILE_HASHES,
    FORMAT,
    SEGMENT_MANIFEST,
    SEGMENTS,
    VERSIONS,
    current_version,
    new_version_name,
    prune_versions,
    publish_segment,
    publish_version,
    read_manifest,
    segment_folder,
    verify_version,
    version_segments,
    writer_lock,
)
from qabot.index.loaded import SENTENCE_OFFSETS, sentence_offsets, version_documents
from qabot.index.passage_periods import PeriodWriter
from qabot.index.sentence_tokens import SentenceTokenWriter
from qabot.index.vectors import build_vector_index, save_sentences, save_vector_index
from qabot.ingest import (
    IngestError,
    discover_ids,
    file_hash,
    load_document,
    load_file_hashes,
    save_file_hashes,
)
from qabot.passages import PassageConfig, split_document
from qabot.restore import RestoreStats, merge_stats
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
# A version of more segments than this has its smallest merged (merge_choice): each segment
# costs a FAISS search and a term lookup per query term. A segment with more of its rows
# deleted is rewritten: deleted rows still count in BM25 statistics (and disk) until then.
MAX_SEGMENTS = 8
MAX_DELETED_SHARE = 0.25

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
    segments: int = 0  # the version's segments
    merged: bool = False  # live segments were rewritten into the new one (merge_choice)
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
    (index_dir / SEGMENTS).mkdir(parents=True, exist_ok=True)
    prune_versions(index_dir)  # clears staging folders a killed build left behind

    name = new_version_name()
    while (index_dir / VERSIONS / name).exists() or (index_dir / SEGMENTS / name).exists():
        time.sleep(1.0)
        name = new_version_name()
    # The new segment (named after the version) and the version are written into staging
    # folders; a build that publishes nothing (or is killed) leaves only those, which the
    # next build clears.
    staging = index_dir / VERSIONS / f".{name}.tmp"
    segment_staging = index_dir / SEGMENTS / f".{name}.tmp"
    staging.mkdir()
    try:
        published = _build_into(
            staging, segment_staging, name, docs_dir, index_dir, embedder, config, progress, summary
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(segment_staging, ignore_errors=True)
        raise
    if not published:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(segment_staging, ignore_errors=True)
        return summary
    prune_versions(index_dir)
    summary.version = name
    summary.published = True
    log.info(
        "index version %s: %d documents, %d passages (%d embedded), %d segments%s",
        name,
        summary.documents,
        summary.passages,
        summary.embedded,
        summary.segments,
        " (merged)" if summary.merged else "",
    )
    return summary


@dataclass
class _Planned:
    """One readable file of the docs folder, and whether the live version holds it as is."""

    path: Path
    doc_id: str
    kept: bool  # unchanged: its rows stay in their live segment
    existed: bool  # the live version holds a version of it (changed, when not kept)


def _build_into(
    staging: Path,
    segment_staging: Path,
    name: str,
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: PassageConfig,
    progress: Progress,
    summary: BuildSummary,
) -> bool:
    """Write a version (and its new segment) and publish it; False (and summary.version the
    live version) when the live version already holds the documents."""
    fingerprint = pipeline_fingerprint(config)
    live, live_manifest, live_docs = _live_state(index_dir)
    reusable = bool(
        live_manifest
        and live_manifest.get("format") == FORMAT
        and live_manifest.get("embedder_id") == embedder.id
        and live_manifest.get("pipeline") == fingerprint
        and live_manifest.get("documents_derived") == DOCUMENT_VERSION
    )
    known = set(live_docs)  # for counting changes, even when nothing can be kept
    if not reusable:
        live_docs = {}

    files = list(discover_ids(docs_dir)) if docs_dir.is_dir() else []
    if not docs_dir.is_dir():
        log.warning("docs folder %s does not exist; building an empty index", docs_dir)
    load_file_hashes(index_dir / FILE_HASHES)
    planned: list[_Planned] = []
    seen: set[str] = set()
    for number, (path, doc_id) in enumerate(files, start=1):
        progress("reading", number, len(files))
        seen.add(doc_id)
        try:
            data_hash = file_hash(path)
        except OSError as exc:
            summary.skipped_files.append(
                SkippedFile(doc_id, f"không đọc được tệp ({exc.strerror})")
            )
            continue
        old = live_docs.get(doc_id)
        kept = old is not None and old[1].content_hash == data_hash
        planned.append(_Planned(path, doc_id, kept, doc_id in known))
    summary.removed = len(known - seen)
    try:
        save_file_hashes(index_dir / FILE_HASHES, (path for path, _ in files))
    except OSError as exc:  # only the next build's speed depends on it
        log.warning("could not save the file hashes: %s", exc)

    # The live segments that keep documents, each with what it loses.
    kept_docs = {p.doc_id for p in planned if p.kept}
    old_segments = []
    for entry in version_segments(live_manifest or {}) if reusable else []:
        documents = [i for s, i in live_docs.values() if s == entry["id"]]
        staying = [i for i in documents if i.doc_id in kept_docs]
        if not staying:
            continue  # every document of it deleted: the segment leaves the version
        gone = set(entry.get("deleted", [])) | {
            i.doc_id for i in documents if i.doc_id not in kept_docs
        }
        live_rows = sum(i.passages for i in staying)
        old_segments.append(
            {"id": entry["id"], "passages": entry["passages"], "deleted": gone, "live": live_rows}
        )
    fresh = [p for p in planned if not p.kept]
    merging = merge_choice(old_segments, adding=bool(fresh))
    if reusable and not fresh and not summary.removed and not merging:
        summary.documents = summary.unchanged = len(planned)
        summary.passages = summary.reused = sum(live_docs[d][1].passages for d in kept_docs)
        summary.skipped = len(summary.skipped_files)
        summary.segments = len(version_segments(live_manifest))
        summary.version = live
        return False
    # The documents of the merged segments are copied into the new one with the new files.
    rewritten = {d for d in kept_docs if live_docs[d][0] in merging}
    old_segments = [s for s in old_segments if s["id"] not in merging]
    fresh = [p for p in planned if not p.kept or p.doc_id in rewritten]
    summary.merged = bool(merging)
    staying = kept_docs - rewritten
    summary.documents = len(staying)
    summary.passages = sum(live_docs[d][1].passages for d in staying)
    summary.unchanged = len(kept_docs)

    segment_rows = _write_documents(
        segment_staging, fresh, live_docs, index_dir, docs_dir, config, summary
    )
    summary.skipped = len(summary.skipped_files)
    segments = [
        {"id": s["id"], "passages": s["passages"], "deleted": sorted(s["deleted"])}
        for s in old_segments
    ]
    if segment_rows is None:
        shutil.rmtree(segment_staging, ignore_errors=True)
    else:
        summary.embedded = _write_segment(segment_staging, name, index_dir, embedder, progress)
        publish_segment(index_dir, segment_staging, name)
        segments.append({"id": name, "passages": segment_rows, "deleted": []})
    summary.reused = summary.passages - summary.embedded
    summary.segments = len(segments)

    progress("writing", 0, 1)
    folders = [segment_folder(index_dir, s["id"]) for s in segments]
    merge_stats([RestoreStats.load(f) or RestoreStats.from_texts(()) for f in folders]).save(
        staging
    )
    # A version that only drops documents keeps the live dimension: asking the embedder
    # would load a model (seconds) that embeds nothing.
    kept_dim = live_manifest.get("dim") if reusable and segment_rows is None else None
    manifest = {
        "format": FORMAT,
        "version": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder_id": embedder.id,
        "dim": int(kept_dim) if kept_dim else embedder.dim,
        "pipeline": fingerprint,
        "documents_derived": DOCUMENT_VERSION,
        "documents": summary.documents,
        "passages": summary.passages,
        "skipped": [asdict(s) for s in summary.skipped_files],
        "segments": segments,
        "bm25": global_stats(folders).as_dict(),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    publish_version(index_dir, staging, name)
    progress("writing", 1, 1)
    return True


def merge_choice(segments: Sequence[dict], adding: bool) -> set[str]:
    """The ids of the live segments a build rewrites into its new segment, as Lucene's tiered
    merge policy chooses: each with more than MAX_DELETED_SHARE of its rows deleted, and,
    when the version would hold more than MAX_SEGMENTS segments, the smallest (by live
    rows) until MAX_SEGMENTS // 2 remain, the new one among them. A merge so costs what
    the small segments hold; a segment of a million passages is rewritten only for its
    own deletions, or once the others have grown as large. ``segments``: the live ones
    that keep documents, each {"id", "passages", "live"}; ``adding``: whether the build
    writes a new segment anyway."""
    chosen = {
        s["id"] for s in segments if s["passages"] - s["live"] > MAX_DELETED_SHARE * s["passages"]
    }
    rest = sorted((s for s in segments if s["id"] not in chosen), key=lambda s: s["live"])
    if len(rest) + bool(adding or chosen) > MAX_SEGMENTS:
        chosen |= {s["id"] for s in rest[: len(rest) + 1 - MAX_SEGMENTS // 2]}
    return chosen


def _write_documents(
    folder: Path,
    planned: list[_Planned],
    live_docs: dict[str, tuple[str, meta.DocumentInfo]],
    index_dir: Path,
    docs_dir: Path,
    config: PassageConfig,
    summary: BuildSummary,
) -> int | None:
    """The metadata and sentence spans of a new segment holding ``planned`` (a kept
    document's rows are copied from its segment, the others read from their files); its
    number of passages, or None when no document made it in. Rows go to the segment's
    metadata as documents are read, so a build holds no document's text longer than that."""
    if not planned:
        return None
    folder.mkdir()
    rows = meta.MetaWriter(folder / "meta.sqlite")
    flat = array("i")  # (passage row, start, end) of every sentence
    sources: dict[str, sqlite3.Connection] = {}
    passages = documents = 0
    try:
        for doc in planned:
            document_rows = None
            old = live_docs.get(doc.doc_id)
            if doc.kept:
                segment = old[0]
                if segment not in sources:
                    sources[segment] = meta.connect(
                        segment_folder(index_dir, segment) / "meta.sqlite"
                    )
                try:
                    document_rows = meta.read_document_rows(sources[segment], doc.doc_id)
                except sqlite3.Error as exc:  # read it from its file instead
                    log.warning("live index rows of %s unreadable (%s)", doc.doc_id, exc)
            if document_rows is None:
                try:
                    document = load_document(doc.path, docs_dir, doc.doc_id)
                    document_rows = meta.DocumentRows.from_document(
                        document, split_document(document, config)
                    )
                except IngestError as exc:
                    log.warning("skipping %s: %s", doc.doc_id, exc)
                    summary.skipped_files.append(SkippedFile(doc.doc_id, str(exc)))
                    continue
                except Exception as exc:  # one file's bug must not stop every later build
                    log.exception("skipping %s: reading it failed unexpectedly", doc.doc_id)
                    reason = f"không đọc được tệp (lỗi {type(exc).__name__})"
                    summary.skipped_files.append(SkippedFile(doc.doc_id, reason))
                    continue
                if not doc.existed:
                    summary.added += 1
                elif not doc.kept:
                    summary.changed += 1
            # Sentence units let the ranker and the short answer see which sentence answers.
            for passage in document_rows.passages:
                for start, end in sentence_units(passage.text):
                    flat.extend((passages, start, end))
                passages += 1
            rows.add(document_rows)
            documents += 1
    finally:
        for db in sources.values():
            db.close()
        rows.close()
    if not documents:
        return None
    summary.documents += documents
    summary.passages += passages
    sentences = np.frombuffer(flat, dtype=np.int32).reshape(-1, 3)
    np.save(folder / "sentence_spans.npy", sentences)
    return passages


def _write_segment(
    folder: Path, name: str, index_dir: Path, embedder: Embedder, progress: Progress
) -> int:
    """The vectors, sentences, BM25 and restore statistics of a segment whose metadata and
    sentence spans are written; the number of texts embedded."""
    store = meta.PassageStore(folder / "meta.sqlite", cache_size=0)
    try:
        passages = len(store)
        vectors, embedded = _vectors_for(
            (p.indexed_text for p in store), passages, index_dir, embedder, progress
        )
        sentences = np.load(folder / "sentence_spans.npy")
        offsets = sentence_offsets(sentences, passages)

        def sentence_texts() -> Iterator[str]:
            for row, passage in enumerate(store):
                for start, end in sentences[offsets[row] : offsets[row + 1], 1:].tolist():
                    yield passage.text[start:end]

        # Half precision as stored: the largest array of a build.
        sentence_vectors, _ = _vectors_for(
            sentence_texts(), len(sentences), index_dir, embedder, progress, dtype=np.float16
        )
        progress("writing", 0, 1)
        save_vector_index(build_vector_index(vectors), folder / "vectors.faiss")
        del vectors
        save_sentences(folder, sentences, sentence_vectors)
        del sentence_vectors
        np.save(folder / SENTENCE_OFFSETS, offsets)
        bm25 = BM25Writer(folder)
        sentence_tokens = SentenceTokenWriter(folder)
        periods = PeriodWriter()
        documents = store.documents()
        dates = {d.doc_id: d.date for d in documents}
        try:
            for row, passage in enumerate(store):
                bm25.add(passage.indexed_text)
                spans = sentences[offsets[row] : offsets[row + 1], 1:].tolist()
                sentence_tokens.add(passage.text, spans, bm25.vocabulary)
                periods.add(passage.text, dates.get(passage.doc_id))
            for document in documents:
                sentence_tokens.add_subject(document.doc_id, document.subject, bm25.vocabulary)
            sentence_tokens.close(len(bm25.vocabulary))
        finally:
            sentence_tokens.abort()  # its file, when close() was not reached
        periods.save(folder)
        bm25.close()
        # Names of a newly added report ("Tràng Duệ") are restored from the next version on.
        RestoreStats.from_texts(p.indexed_text for p in store).save(folder)
    finally:
        store.close()
    record = {"segment": name, "embedder_id": embedder.id, "passages": passages}
    (folder / SEGMENT_MANIFEST).write_text(json.dumps(record, ensure_ascii=False, indent=2))
    return embedded


def _live_state(index_dir: Path):
    """The live version's name, manifest and documents (doc id -> (segment id, info)), when
    it is whole enough to keep documents from; else (None, None, {}) so that every file is
    read again."""
    live = current_version(index_dir)
    if live is None:
        return None, None, {}
    problems = verify_version(index_dir, live, stamps=True)
    if problems:
        log.warning(
            "live index version %s is damaged (%s); reading every document again",
            live,
            "; ".join(f"{p.file}: {p.kind}" for p in problems),
        )
        return None, None, {}
    try:
        manifest = read_manifest(index_dir, live)
        documents = version_documents(index_dir, manifest)
    except (IndexDamagedError, sqlite3.Error, KeyError, TypeError) as exc:
        log.warning("live index version %s cannot be read (%s); reading every document", live, exc)
        return None, None, {}
    return live, manifest, documents


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
