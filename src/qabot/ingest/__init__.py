"""Ingestion: files on disk -> cleaned Documents with paragraphs and metadata."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qabot.ingest.clean import BODY, CAPTION, clean
from qabot.ingest.loaders import SUPPORTED_SUFFIXES, IngestError, load_raw

__all__ = [
    "BODY",
    "CAPTION",
    "SUPPORTED_SUFFIXES",
    "Document",
    "IngestError",
    "Paragraph",
    "discover",
    "doc_id_for",
    "file_hash",
    "load_document",
]

log = logging.getLogger(__name__)

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Paragraph:
    number: int  # 1-based, as cited to readers
    text: str
    kind: str  # BODY or CAPTION
    start: int  # offsets into Document.text
    end: int


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    date: str | None
    source: str
    content_hash: str
    paragraphs: tuple[Paragraph, ...]

    @property
    def text(self) -> str:
        return PARAGRAPH_SEPARATOR.join(p.text for p in self.paragraphs)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A file's hash by path, with the stat fields that change whenever its content does (ctime
# cannot be set back, unlike mtime): a service hashes every file of the folder when a report
# is uploaded (duplicates) and again when it builds, 15,000 files and 0.9 GB at a million
# passages. Only files whose ctime is RACY_SECONDS in the past are remembered, so a write in
# the same timestamp tick as the hashing (which could keep the stamp) is never trusted, as
# git treats "racily clean" entries.
RACY_SECONDS = 2
HASHES_KEPT = 200_000
_hashes: dict[Path, tuple[tuple[int, int, int, int], str]] = {}
_hashes_lock = threading.Lock()


def file_hash(path: Path) -> str:
    """content_hash of a file's bytes; raises OSError when it cannot be read."""
    st = path.stat()
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _hashes_lock:
        known = _hashes.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    digest = content_hash(path.read_bytes())
    if time.time_ns() - st.st_ctime_ns > RACY_SECONDS * 1_000_000_000:
        with _hashes_lock:
            if len(_hashes) >= HASHES_KEPT:
                _hashes.clear()
            _hashes[path] = (stamp, digest)
    return digest


def doc_id_for(path: Path, root: Path, *, root_resolved: bool = False) -> str:
    """Stable id: the path relative to the docs folder, with forward slashes.
    ``root_resolved``: the caller resolved ``root`` already (a scan asks for every file's
    id under one root, and resolving the root again for each was half of scanning a
    folder of 15,000 reports)."""
    return path.resolve().relative_to(root if root_resolved else root.resolve()).as_posix()


def discover(root: Path) -> Iterator[Path]:
    """Supported files under ``root``, in a stable order, skipping hidden files."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path


def load_document(path: Path, root: Path) -> Document:
    """Read, clean and split one file. Raises IngestError when it holds no usable text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"không đọc được tệp ({exc.strerror})") from None
    if not data.strip():
        raise IngestError("tệp không có nội dung")
    raw = load_raw(path)
    try:
        cleaned = clean(raw)
    except (RecursionError, MemoryError, ValueError) as exc:
        log.info("cleaning %s failed: %r", path.name, exc)
        raise IngestError("không xử lý được nội dung tệp") from None
    if not cleaned.paragraphs:
        raise IngestError("không tìm thấy nội dung văn bản trong tệp")
    paragraphs = []
    offset = 0
    for number, (text, kind) in enumerate(cleaned.paragraphs, start=1):
        paragraphs.append(Paragraph(number, text, kind, offset, offset + len(text)))
        offset += len(text) + len(PARAGRAPH_SEPARATOR)
    doc_id = doc_id_for(path, root)
    return Document(
        doc_id=doc_id,
        title=cleaned.title or path.stem,
        date=cleaned.date,
        source=doc_id,
        content_hash=content_hash(data),
        paragraphs=tuple(paragraphs),
    )
