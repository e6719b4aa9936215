"""The docs folder as a library: adding and removing report files safely.

Only file operations live here; the index is updated by a build afterwards. Every change
is journalled in ``<docs>/.qabot-journal/``: the intent is written (and fsynced) before a
file moves, the process holds an exclusive lock on its journal entry while the change runs,
and an entry that nobody holds any more (the process died) is settled by ``recover``, which
the next build runs under the index writer lock. Settling compares with what the live index
holds: a removal whose build was published is finished, one that was not is undone (the
file comes back under its own name); an added file stays only if the index already holds
exactly that file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from qabot.errors import LibraryError
from qabot.index.layout import fsync_dir
from qabot.ingest import (
    SUPPORTED_SUFFIXES,
    IngestError,
    content_hash,
    discover_ids,
    doc_id_for,
    file_hash,
    load_document,
)
from qabot.messages import human_size

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_NAME_BYTES = 255  # what Linux file systems allow for one name
JOURNAL = ".qabot-journal"


@dataclass(frozen=True)
class AddedFile:
    doc_id: str
    path: Path


def _refused_character(text: str) -> str | None:
    """The first character a file name must not hold: control characters (NUL, newline,
    tab, the ESC of terminal colour codes), format characters (bidi overrides such as
    U+202E that make "gpj.exe" display as "exe.jpg", zero-width spaces) and separators."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            return ch
    return None


def safe_name(name: str) -> str:
    """A plain file name inside the docs folder, or LibraryError (no folders, no "..", no
    control or bidi characters, at most 255 bytes). Returned in Unicode NFC, so the same
    name typed on two systems (composed "ệ" or "e" plus combining marks) is one name."""
    cleaned = unicodedata.normalize("NFC", name.replace("\\", "/").strip())
    bad = _refused_character(cleaned)
    if bad is not None:
        raise LibraryError(
            "invalid_name",
            f"Tên tệp không được chứa ký tự điều khiển hoặc ký tự ẩn (U+{ord(bad):04X}).",
        )
    if len(cleaned.encode("utf-8")) > MAX_NAME_BYTES:
        raise LibraryError(
            "invalid_name",
            f"Tên tệp quá dài ({len(cleaned)} ký tự); hãy đặt tên ngắn hơn.",
        )
    parts = PurePosixPath(cleaned).parts
    if (
        not cleaned
        or cleaned.startswith("/")
        or len(parts) != 1
        or parts[0] in (".", "..")
        or parts[0].startswith(".")
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


def _same_name_in(folder: Path, name: str) -> Path | None:
    """A file in ``folder`` whose name is ``name`` up to Unicode normalisation."""
    target = folder / name
    if target.exists():
        return target
    if not folder.is_dir():
        return None
    wanted = unicodedata.normalize("NFC", name)
    for item in folder.iterdir():
        if unicodedata.normalize("NFC", item.name) == wanted:
            return item
    return None


def existing_hashes(docs_dir: Path) -> dict[str, str]:
    """content hash -> doc id of every document already in the folder."""
    hashes = {}
    for path, doc_id in discover_ids(docs_dir):
        try:
            hashes[file_hash(path)] = doc_id
        except OSError:
            continue
    return hashes


def add_file(
    docs_dir: Path, name: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES
) -> AddedFile:
    """Write one file into the docs folder atomically, refusing unsafe, duplicate or
    unreadable files. (Unjournalled; the service uses ``stage_files``.)"""
    addition = stage_files(docs_dir, [(name, data)], max_bytes)
    addition.done()
    return addition.added[0]


def _check_file(docs_dir: Path, name: str, data: bytes, max_bytes: int) -> tuple[str, str]:
    """(file name, content hash) of an acceptable upload, else LibraryError."""
    filename = safe_name(name)
    check_size(filename, len(data), max_bytes)
    if not data.strip():
        raise LibraryError("empty_file", f"Tệp {filename} không có nội dung.")
    if _same_name_in(docs_dir, filename) is not None:
        raise LibraryError("exists", f"Đã có tài liệu tên {filename}; hãy đổi tên tệp.")
    return filename, content_hash(data)


def _read_check(docs_dir: Path, filename: str, data: bytes) -> Path:
    """Write the data to a hidden temporary file (never seen by builds) and read it as a
    document there, so an unreadable upload is refused before it reaches the folder."""
    suffix = PurePosixPath(filename).suffix.lower()
    handle, temporary = tempfile.mkstemp(dir=docs_dir, prefix=".upload-", suffix=suffix)
    path = Path(temporary)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        load_document(path, docs_dir)
    except IngestError as exc:
        path.unlink(missing_ok=True)
        raise LibraryError("unreadable", f"Không đọc được tệp {filename}: {exc}.") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def stage_files(
    docs_dir: Path, files: list[tuple[str, bytes]], max_bytes: int = DEFAULT_MAX_BYTES
) -> Change:
    """Check every file (name, size, duplicates, readable), then journal and place them all.
    All or nothing: any refusal leaves the folder as it was. The returned Change must be
    settled: ``done()`` once indexed, else ``settle()``."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    known = existing_hashes(docs_dir)
    checked: list[tuple[str, str, bytes]] = []
    names: set[str] = set()
    for name, data in files:
        filename, digest = _check_file(docs_dir, name, data, max_bytes)
        duplicate = known.get(digest) or next((n for n, d, _ in checked if d == digest), None)
        if duplicate is not None:
            raise LibraryError(
                "duplicate", f"Nội dung tệp {filename} trùng với tài liệu đã có: {duplicate}."
            )
        if filename in names:
            raise LibraryError("exists", f"Tệp {filename} có mặt hai lần trong lần tải lên.")
        names.add(filename)
        checked.append((filename, digest, data))
    temporaries: list[Path] = []
    change: Change | None = None
    try:
        for filename, _, data in checked:
            temporaries.append(_read_check(docs_dir, filename, data))
        change = Change.begin(
            docs_dir,
            "add",
            [{"doc_id": filename, "hash": digest} for filename, digest, _ in checked],
        )
        for (filename, _, _), temporary in zip(checked, temporaries, strict=True):
            target = docs_dir / filename
            try:
                os.link(temporary, target)  # fails instead of overwriting a file that appeared
            except FileExistsError:
                raise LibraryError(
                    "exists", f"Đã có tài liệu tên {filename}; hãy đổi tên tệp."
                ) from None
            except OSError:  # a file system without hard links
                try:
                    with open(target, "xb") as out:
                        out.write(temporary.read_bytes())
                except FileExistsError:
                    raise LibraryError(
                        "exists", f"Đã có tài liệu tên {filename}; hãy đổi tên tệp."
                    ) from None
            change.added.append(AddedFile(doc_id_for(target, docs_dir), target))
    except BaseException:
        if change is not None:
            change.settle(None)  # nothing was indexed: take back what was placed
        raise
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return change


def park_files(docs_dir: Path, doc_ids: list[str]) -> Change:
    """Journal and set aside the files of documents to remove. Every id is checked before
    anything moves, so a bad id changes nothing. The returned Change must be settled:
    ``done()`` once the index no longer holds them, else ``settle()``."""
    paths = [document_path(docs_dir, doc_id) for doc_id in dict.fromkeys(doc_ids)]
    items = [
        {"doc_id": doc_id_for(path, docs_dir), "parked": f"{number}{path.suffix}"}
        for number, path in enumerate(paths)
    ]
    change = Change.begin(docs_dir, "remove", items)
    try:
        change.parking.mkdir()
        for item in items:
            os.replace(docs_dir / item["doc_id"], change.parking / item["parked"])
    except BaseException:
        change.settle(None)
        raise
    change.removed = paths
    return change


@dataclass
class Change:
    """One journalled change of the docs folder, locked by this process while it runs."""

    docs_dir: Path
    entry: Path  # .qabot-journal/<id>.json
    op: str  # "add" or "remove"
    items: list[dict]
    lock: IO | None = field(default=None, repr=False)
    added: list[AddedFile] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    @property
    def parking(self) -> Path:
        return self.entry.with_suffix("")

    @classmethod
    def begin(cls, docs_dir: Path, op: str, items: list[dict]) -> Change:
        folder = docs_dir / JOURNAL
        entry = folder / f"{uuid.uuid4().hex}.json"
        for _ in range(3):  # another change may remove the empty folder meanwhile
            folder.mkdir(exist_ok=True)
            try:
                lock = open(entry, "x")  # noqa: SIM115 - held until the change is settled
                break
            except FileNotFoundError:
                continue
        else:
            raise LibraryError("journal", "Không ghi được nhật ký thay đổi của thư mục tài liệu.")
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(json.dumps({"op": op, "items": items}, ensure_ascii=False))
        lock.flush()
        os.fsync(lock.fileno())
        fsync_dir(folder)
        return cls(docs_dir, entry, op, items, lock)

    def done(self) -> None:
        """The change is in the index: forget parked files and the journal entry."""
        shutil.rmtree(self.parking, ignore_errors=True)
        self._close()

    def release(self) -> None:
        """Leave the entry for ``recover`` (the next build) to settle."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def settle(self, indexed: Mapping[str, str] | None) -> list[str]:
        """Make the folder agree with the index: ``indexed`` is doc id -> content hash of
        the live index (None when unknown: then the change is undone)."""
        actions = []
        for item in self.items:
            doc_id = item["doc_id"]
            if self.op == "add":
                path = self.docs_dir / doc_id
                if indexed is not None and indexed.get(doc_id) == item["hash"]:
                    actions.append(f"kept {doc_id} (already indexed)")
                    continue
                try:
                    if content_hash(path.read_bytes()) == item["hash"]:
                        path.unlink()
                        actions.append(f"took back {doc_id}")
                except FileNotFoundError:
                    pass
            else:
                parked = self.parking / item["parked"]
                if not parked.exists():
                    continue
                original = self.docs_dir / doc_id
                if indexed is not None and doc_id not in indexed:
                    parked.unlink()
                    actions.append(f"finished removing {doc_id}")
                elif _same_name_in(original.parent, original.name) is None:
                    os.replace(parked, original)
                    actions.append(f"restored {doc_id}")
                else:  # a new file took the name since; it wins
                    parked.unlink()
                    actions.append(f"dropped the removed copy of {doc_id}")
        shutil.rmtree(self.parking, ignore_errors=True)
        self._close()
        return actions

    def _close(self) -> None:
        self.entry.unlink(missing_ok=True)
        self.release()
        with contextlib.suppress(OSError):  # not empty: another change is running
            self.entry.parent.rmdir()


def recover(docs_dir: Path, indexed: Mapping[str, str] | None) -> list[str]:
    """Settle journal entries that no running process holds (it died mid-change).
    Run it where no build can start meanwhile (under the index writer lock)."""
    folder = docs_dir / JOURNAL
    if not folder.is_dir():
        return []
    actions = []
    for entry in sorted(folder.glob("*.json")):
        try:
            lock = open(entry, "r+")  # noqa: SIM115 - kept by the Change below
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a change that is still running
            lock.close()
            continue
        try:
            record = json.loads(lock.read() or "null")
            op, items = record["op"], list(record["items"])
        except (ValueError, TypeError, KeyError):
            # Written before anything moved and never finished: nothing to settle.
            shutil.rmtree(entry.with_suffix(""), ignore_errors=True)
            entry.unlink(missing_ok=True)
            lock.close()
            continue
        done = Change(docs_dir, entry, op, items, lock).settle(indexed)
        for action in done:
            log.warning("docs journal: %s", action)
        actions.extend(done)
    for leftover in docs_dir.glob(".removing-*"):  # from versions before the journal
        log.warning("docs folder holds %s from an interrupted removal; check it", leftover)
    return actions


def document_path(docs_dir: Path, doc_id: str) -> Path:
    """The file of a document id (its path inside the docs folder), which must exist.
    Found up to Unicode normalisation of its name."""
    # Only the id as /documents lists it: "x.txt/", "./x.txt", "a//x.txt" or "a/../x.txt"
    # resolve to a file too, and a DELETE of such a look-alike must not remove that file.
    not_canonical = any(part in ("", ".", "..") for part in doc_id.split("/"))
    if (
        not_canonical
        or _refused_character(doc_id) is not None
        or len(doc_id.encode("utf-8")) > 4096
    ):
        raise LibraryError("invalid_name", f"Mã tài liệu không hợp lệ: {doc_id[:80]!r}.")
    root = docs_dir.resolve()
    target = (root / doc_id).resolve()
    relative = target.relative_to(root).parts if target.is_relative_to(root) else ()
    if (
        not relative
        or any(part.startswith(".") for part in relative)
        or any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in relative)
        or target.suffix.lower() not in SUPPORTED_SUFFIXES
    ):
        raise LibraryError("invalid_name", f"Mã tài liệu không hợp lệ: {doc_id[:80]!r}.")
    found = _same_name_in(target.parent, target.name)
    if found is None or not found.is_file():
        raise LibraryError("not_found", f"Không có tài liệu {doc_id!r}.")
    return found
