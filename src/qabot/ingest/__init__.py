"""Ingestion: files on disk -> cleaned Documents with paragraphs and metadata."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
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
    "discover_ids",
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
_hashes: dict[str, tuple[tuple[int, int, int, int], str]] = {}  # by path (a str hashes fast)
_hashes_lock = threading.Lock()


def file_hash(path: Path) -> str:
    """content_hash of a file's bytes; raises OSError when it cannot be read."""
    key = os.fspath(path)
    st = os.stat(key)
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _hashes_lock:
        known = _hashes.get(key)
    if known is not None and known[0] == stamp:
        return known[1]
    digest = content_hash(path.read_bytes())
    if time.time_ns() - st.st_ctime_ns > RACY_SECONDS * 1_000_000_000:
        with _hashes_lock:
            if len(_hashes) >= HASHES_KEPT:
                _hashes.clear()
            _hashes[key] = (stamp, digest)
    return digest


HASHES_FORMAT = 1


def load_file_hashes(path: Path) -> int:
    """Remember the hashes a previous process saved with save_file_hashes (a build keeps
    them in the index folder), so that a build from the command line reads only the files
    whose stamp changed since, as git's index does, instead of every report of the folder.
    A missing, unreadable or foreign file is no error: the files are hashed. Returns how
    many were remembered."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("format") != HASHES_FORMAT:
            return 0
        loaded = {
            str(key): ((int(a), int(b), int(c), int(d)), str(digest))
            for key, ((a, b, c, d), digest) in saved["files"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0
    with _hashes_lock:
        for key, value in loaded.items():
            if len(_hashes) >= HASHES_KEPT:
                break
            _hashes.setdefault(key, value)
    return len(loaded)


def save_file_hashes(path: Path, files: Iterable[Path]) -> None:
    """Write the remembered hashes of ``files`` for load_file_hashes (replaced atomically:
    a reader sees the old file or the new one). Raises OSError."""
    with _hashes_lock:
        entries = {key: _hashes[key] for key in map(os.fspath, files) if key in _hashes}
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(
        json.dumps({"format": HASHES_FORMAT, "files": entries}, ensure_ascii=False),
        encoding="utf-8",
    )
    os.replace(staging, path)


def doc_id_for(path: Path, root: Path) -> str:
    """Stable id: the path relative to the docs folder, with forward slashes (a whole
    folder's at once: discover_ids)."""
    return path.resolve().relative_to(root.resolve()).as_posix()


def _files(root: Path) -> list[tuple[list[str], str, bool]]:
    """(components under ``root``, path, whether it is a symlink) of the supported files,
    sorted by components; hidden files and folders are skipped and symlinked folders not
    entered (as Path.rglob). One os.scandir per folder: no stat call per file."""
    found: list[tuple[list[str], str, bool]] = []

    def walk(folder: str, parts: list[str]) -> None:
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:
            return
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, [*parts, entry.name])
                elif entry.is_file() and Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append(([*parts, entry.name], entry.path, entry.is_symlink()))
            except OSError:
                continue

    walk(str(root), [])
    found.sort(key=lambda item: item[0])
    return found


def discover(root: Path) -> Iterator[Path]:
    """Supported files under ``root``, in a stable order (by path components), skipping
    hidden files and folders; symlinked folders are not entered."""
    for _, path, _ in _files(root):
        yield Path(path)


def discover_ids(root: Path) -> Iterator[tuple[Path, str]]:
    """discover(root) with each file's doc_id_for, for a whole folder at once: the folder is
    resolved once, and a file only when it is a symlink (resolving every path was most of
    an upload's time with 15,000 reports). A symlink to a file of the folder is left out (the
    file is named once); one to a file outside it is known by its own path (doc_id_for
    refuses it)."""
    resolved = root.resolve()
    files = _files(resolved)
    named = {"/".join(parts) for parts, _, symlink in files if not symlink}
    seen: set[str] = set()
    for parts, path, symlink in files:
        found, doc_id = Path(path), "/".join(parts)
        if symlink:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                doc_id = found.resolve().relative_to(resolved).as_posix()
            if doc_id in named or doc_id in seen:
                continue  # a link to a file of the folder: that file, named once
        seen.add(doc_id)
        yield found, doc_id


def load_document(path: Path, root: Path, doc_id: str | None = None) -> Document:
    """Read, clean and split one file. Raises IngestError when it holds no usable text.
    ``doc_id``: its id, when a scan (discover_ids) found it already."""
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
    doc_id = doc_id if doc_id is not None else doc_id_for(path, root)
    return Document(
        doc_id=doc_id,
        title=cleaned.title or path.stem,
        date=cleaned.date,
        source=doc_id,
        content_hash=content_hash(data),
        paragraphs=tuple(paragraphs),
    )
