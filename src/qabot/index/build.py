"""Incremental, atomic index builds.

Only new or changed files are cleaned, split and embedded; unchanged documents are copied
from the live version; vectors come from the embedding cache when their text was seen.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qabot.embedding import Embedder
from qabot.index import meta
from qabot.index.bm25 import BM25Index
from qabot.index.cache import EmbeddingCache, text_hash
from qabot.index.store import (
    CACHE,
    FORMAT,
    VERSIONS,
    current_version,
    new_version_name,
    prune_versions,
    publish_version,
    read_manifest,
    writer_lock,
)
from qabot.index.vectors import build_vector_index, save_sentences, save_vector_index
from qabot.ingest import IngestError, content_hash, discover, doc_id_for, load_document
from qabot.passages import PassageConfig, split_document
from qabot.restore import RestoreStats
from qabot.text import sentence_units

log = logging.getLogger(__name__)

# Bump when cleaning or splitting changes, so every document is processed again.
PIPELINE_VERSION = "5"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


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
    return f"pipeline{PIPELINE_VERSION}-{config.fingerprint()}"


def build_index(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    config: PassageConfig | None = None,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
) -> BuildSummary:
    config = config or PassageConfig()
    progress = progress or (lambda stage, done, total: None)
    started = time.monotonic()
    with writer_lock(index_dir, wait_seconds):
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
    fingerprint = pipeline_fingerprint(config)
    (index_dir / VERSIONS).mkdir(parents=True, exist_ok=True)
    prune_versions(index_dir)  # clears staging folders a killed build left behind

    live = current_version(index_dir)
    live_manifest = read_manifest(index_dir, live) if live else None
    live_db = meta.connect(index_dir / VERSIONS / live / "meta.sqlite") if live else None
    try:
        live_docs = {d.doc_id: d for d in meta.read_documents(live_db)} if live_db else {}
        reusable = bool(
            live_manifest
            and live_manifest.get("format") == FORMAT
            and live_manifest.get("embedder_id") == embedder.id
            and live_manifest.get("pipeline") == fingerprint
        )

        files = list(discover(docs_dir)) if docs_dir.is_dir() else []
        if not docs_dir.is_dir():
            log.warning("docs folder %s does not exist; building an empty index", docs_dir)
        documents: list[meta.DocumentRows] = []
        seen: set[str] = set()
        for number, path in enumerate(files, start=1):
            progress("reading", number, len(files))
            doc_id = doc_id_for(path, docs_dir)
            seen.add(doc_id)
            try:
                data_hash = content_hash(path.read_bytes())
            except OSError as exc:
                summary.skipped_files.append(SkippedFile(doc_id, f"cannot read ({exc.strerror})"))
                continue
            old = live_docs.get(doc_id)
            if reusable and old is not None and old.content_hash == data_hash:
                documents.append(meta.read_document_rows(live_db, doc_id))
                summary.unchanged += 1
                continue
            try:
                document = load_document(path, docs_dir)
            except IngestError as exc:
                log.warning("skipping %s: %s", doc_id, exc)
                summary.skipped_files.append(SkippedFile(doc_id, str(exc)))
                continue
            documents.append(
                meta.DocumentRows.from_document(document, split_document(document, config))
            )
            if old is None:
                summary.added += 1
            else:
                summary.changed += 1
        summary.removed = len(set(live_docs) - seen)
        summary.skipped = len(summary.skipped_files)
    finally:
        if live_db is not None:
            live_db.close()

    passages = [p for doc in documents for p in doc.passages]
    summary.documents = len(documents)
    summary.passages = len(passages)
    vectors, summary.embedded = _vectors_for(
        [p.indexed_text for p in passages], index_dir, embedder, progress
    )
    summary.reused = len(passages) - summary.embedded
    # Sentence vectors let the ranker and the short answer see which sentence answers.
    sentences = np.array(
        [(row, s, e) for row, p in enumerate(passages) for s, e in sentence_units(p.text)],
        dtype=np.int32,
    ).reshape(-1, 3)
    sentence_vectors, _ = _vectors_for(
        [passages[r].text[s:e] for r, s, e in sentences], index_dir, embedder, progress
    )

    nothing_changed = reusable and not (summary.added or summary.changed or summary.removed)
    if nothing_changed:
        summary.version = live
        return summary

    name = new_version_name()
    while (index_dir / VERSIONS / name).exists():
        time.sleep(1.0)
        name = new_version_name()
    staging = index_dir / VERSIONS / f".{name}.tmp"
    staging.mkdir()
    try:
        progress("writing", 0, 1)
        meta.write(staging / "meta.sqlite", documents)
        save_vector_index(build_vector_index(vectors), staging / "vectors.faiss")
        save_sentences(staging, sentences, sentence_vectors)
        BM25Index.build([p.indexed_text for p in passages]).save(staging)
        # Names of a newly added report ("Tràng Duệ") are restored from the next version on.
        RestoreStats.from_texts(p.indexed_text for p in passages).save(staging)
        manifest = {
            "format": FORMAT,
            "version": name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "embedder_id": embedder.id,
            "dim": embedder.dim,
            "pipeline": fingerprint,
            "documents": summary.documents,
            "passages": summary.passages,
            "skipped": [asdict(s) for s in summary.skipped_files],
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
        publish_version(index_dir, staging, name)
        progress("writing", 1, 1)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
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


def _vectors_for(
    texts: list[str], index_dir: Path, embedder: Embedder, progress: Progress, batch: int = 16
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` from the cache, embedding (and caching) only the missing ones."""
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
    matrix = (
        np.stack([known[h] for h in hashes]).astype(np.float32)
        if hashes
        else np.zeros((0, embedder.dim), dtype=np.float32)
    )
    return matrix, len(missing)
