"""Ingestion: files on disk -> cleaned Documents with paragraphs and metadata."""

from __future__ import annotations

import hashlib
import logging
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
    return Document(
        doc_id=doc_id_for(path, root),
        title=cleaned.title or path.stem,
        date=cleaned.date,
        source=doc_id_for(path, root),
        content_hash=content_hash(data),
        paragraphs=tuple(paragraphs),
    )
