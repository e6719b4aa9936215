"""The docs folder as a library: adding and removing report files safely.

Only file operations live here; the index is updated by a build afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from qabot.errors import LibraryError
from qabot.ingest import (
    SUPPORTED_SUFFIXES,
    IngestError,
    content_hash,
    discover,
    doc_id_for,
    load_document,
)
from qabot.messages import human_size

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class AddedFile:
    doc_id: str
    path: Path


def safe_name(name: str) -> str:
    """A plain file name inside the docs folder, or LibraryError (no folders, no "..")."""
    cleaned = name.replace("\\", "/").strip()
    parts = PurePosixPath(cleaned).parts
    if (
        not cleaned
        or cleaned.startswith("/")
        or len(parts) != 1
        or parts[0] in (".", "..")
        or parts[0].startswith(".")
        or "\x00" in cleaned
    ):
        raise LibraryError("invalid_name", f"Tên tệp không hợp lệ: {name!r}.")
    suffix = PurePosixPath(cleaned).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LibraryError(
            "unsupported_type",
            f"Không hỗ trợ loại tệp {suffix or '(không có đuôi)'}; chỉ nhận {allowed}.",
        )
    return cleaned


def check_size(filename: str, size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """LibraryError when a file of ``size`` bytes is over the upload limit."""
    if size > max_bytes:
        raise LibraryError("too_large", f"Tệp {filename} lớn hơn giới hạn {human_size(max_bytes)}.")


def existing_hashes(docs_dir: Path) -> dict[str, str]:
    """content hash -> doc id of every document already in the folder."""
    hashes = {}
    for path in discover(docs_dir):
        try:
            hashes[content_hash(path.read_bytes())] = doc_id_for(path, docs_dir)
        except OSError:
            continue
    return hashes


def add_file(
    docs_dir: Path, name: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES
) -> AddedFile:
    """Write one file into the docs folder atomically, refusing unsafe or duplicate files."""
    filename = safe_name(name)
    check_size(filename, len(data), max_bytes)
    if not data.strip():
        raise LibraryError("empty_file", f"Tệp {filename} không có nội dung.")
    docs_dir.mkdir(parents=True, exist_ok=True)
    duplicate = existing_hashes(docs_dir).get(content_hash(data))
    if duplicate is not None:
        raise LibraryError(
            "duplicate", f"Nội dung tệp {filename} trùng với tài liệu đã có: {duplicate}."
        )
    target = docs_dir / filename
    if target.exists():
        raise LibraryError("exists", f"Đã có tài liệu tên {filename}; hãy đổi tên tệp.")
    handle, temporary = tempfile.mkstemp(dir=docs_dir, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, target)  # fails instead of overwriting a file that just appeared
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            with open(target, "xb") as out:
                out.write(data)
    except FileExistsError:
        raise LibraryError("exists", f"Đã có tài liệu tên {filename}; hãy đổi tên tệp.") from None
    finally:
        os.unlink(temporary)
    try:
        load_document(target, docs_dir)
    except IngestError as exc:
        target.unlink()
        raise LibraryError("unreadable", f"Không đọc được tệp {filename}: {exc}.") from None
    return AddedFile(doc_id_for(target, docs_dir), target)


@contextlib.contextmanager
def removing(docs_dir: Path, doc_ids: list[str]) -> Iterator[list[Path]]:
    """Set documents' files aside; delete them if the block succeeds, restore them if not.

    Every id is checked before anything moves, so a bad id changes nothing.
    """
    paths = [document_path(docs_dir, doc_id) for doc_id in dict.fromkeys(doc_ids)]
    aside = Path(tempfile.mkdtemp(dir=docs_dir, prefix=".removing-"))
    moved: list[tuple[Path, Path]] = []
    try:
        for number, path in enumerate(paths):
            parked = aside / f"{number}{path.suffix}"
            os.replace(path, parked)
            moved.append((path, parked))
        yield paths
    except BaseException:
        for original, parked in moved:
            os.replace(parked, original)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def document_path(docs_dir: Path, doc_id: str) -> Path:
    """The file of a document id (its path inside the docs folder), which must exist."""
    root = docs_dir.resolve()
    target = (root / doc_id).resolve()
    relative = target.relative_to(root).parts if target.is_relative_to(root) else ()
    if (
        not relative
        or any(part.startswith(".") for part in relative)
        or target.suffix.lower() not in SUPPORTED_SUFFIXES
    ):
        raise LibraryError("invalid_name", f"Mã tài liệu không hợp lệ: {doc_id!r}.")
    if not target.is_file():
        raise LibraryError("not_found", f"Không có tài liệu {doc_id!r}.")
    return target
