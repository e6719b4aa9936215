"""The index folder on disk: versions, segments, the CURRENT pointer, the writer lock,
checksums.

    <index dir>/
      CURRENT                  name of the live version (replaced atomically)
      versions/<name>/         manifest.json (its segments, in order, and their deleted
                               documents), restore.npz
      versions/<name>/in-use.lock   held shared by every process serving that version
      segments/<id>/           segment.json, meta.sqlite, vectors.faiss, bm25.npz, ...:
                               the passages of the documents one build added (immutable)
      embedding_cache.sqlite   vectors by (embedder id, text hash), shared by versions
      file_hashes.json         the docs folder's files' content hashes by stat stamp, so
                               a build reads only the files changed since the last one
      build.lock               held by the one writer

A version is a list of segments, as in Lucene: a build writes the documents it added or
changed into one new segment, and a version listing the unchanged segments and the new one;
documents removed or changed become tombstones of their old segment. So adding a report
writes that report's files, not the corpus's. A build writes new folders beside the live
ones and only then swaps CURRENT, so a build killed at any moment leaves the previous version
whole and live. Each version's manifest and each segment's segment.json record the size and
sha256 of their files, so a version damaged afterwards (a disk error, a hand edit, a
truncated copy; in its folder or in one of its segments) is recognised when it is opened, and
the newest good version is served instead. Readers hold a shared lock on the version they
serve, and pruning skips versions it cannot lock exclusively and deletes a segment only when
no remaining version lists it, so nothing in use is ever deleted under a reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from qabot.errors import (  # importable from here too
    IndexBusyError,
    IndexDamagedError,
)

log = logging.getLogger(__name__)

FORMAT = 3  # 3: versions of segments
CURRENT = "CURRENT"
VERSIONS = "versions"
SEGMENTS = "segments"
SEGMENT_MANIFEST = "segment.json"
CACHE = "embedding_cache.sqlite"
FILE_HASHES = "file_hashes.json"
LOCK = "build.lock"
MANIFEST = "manifest.json"
IN_USE = "in-use.lock"
KEEP_VERSIONS = 2
# Files every segment has (before segments, every version); missing one, it cannot be served.
REQUIRED_FILES = (
    "meta.sqlite",
    "vectors.faiss",
    "bm25.npz",
    "sentence_spans.npy",
    "sentence_vectors.npy",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a version (or the folder): which file, and what."""

    file: str
    kind: str  # missing, size, checksum, unreadable, not_a_file, pointer
    detail: str = ""

    def describe(self) -> str:
        """In Vietnamese, for the CLI and status."""
        text = {
            "missing": "thiếu tệp",
            "size": "kích thước sai (tệp bị cắt hoặc bị ghi thêm)",
            "checksum": "nội dung đã bị thay đổi (sai mã kiểm tra sha256)",
            "unreadable": "không đọc được",
            "not_a_file": "không phải là tệp",
            "pointer": "con trỏ phiên bản hiện hành hỏng",
        }.get(self.kind, self.kind)
        return f"{self.file}: {text}" + (f" ({self.detail})" if self.detail else "")

    def as_dict(self) -> dict:
        return {"file": self.file, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class VersionDamage:
    version: str
    problems: tuple[Problem, ...]

    def as_dict(self) -> dict:
        return {"version": self.version, "problems": [p.as_dict() for p in self.problems]}

    def summary(self) -> str:
        return "; ".join(p.describe() for p in self.problems)


# --- the CURRENT pointer and manifests -----------------------------------------------------


def current_version(index_dir: Path) -> str | None:
    """The live version's name, or None when there is none or the pointer is unusable."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except (OSError, UnicodeDecodeError):  # missing, a folder, unreadable
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    return name if (index_dir / VERSIONS / name / MANIFEST).is_file() else None


def pointer_problem(index_dir: Path) -> Problem | None:
    """What is wrong with CURRENT when versions exist but CURRENT does not name one."""
    pointer = index_dir / CURRENT
    if current_version(index_dir) is not None or not list_versions(index_dir):
        return None
    if pointer.is_dir():
        return Problem(CURRENT, "pointer", "CURRENT là một thư mục")
    if not pointer.exists():
        return Problem(CURRENT, "pointer", "thiếu tệp CURRENT")
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return Problem(CURRENT, "pointer", "không đọc được CURRENT")
    return Problem(CURRENT, "pointer", f"CURRENT trỏ tới phiên bản không có: {name[:80]!r}")


def list_versions(index_dir: Path) -> list[str]:
    """Finished versions, newest first (names sort by build time)."""
    folder = index_dir / VERSIONS
    if not folder.is_dir():
        return []
    return sorted(
        (p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        reverse=True,
    )


def read_manifest(index_dir: Path, version: str) -> dict:
    """A version's manifest; IndexDamagedError when it is missing or not a JSON object."""
    path = index_dir / VERSIONS / version / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = Problem(MANIFEST, "unreadable", type(exc).__name__)
        raise IndexDamagedError(
            f"phiên bản chỉ mục {version} bị hỏng: {problem.describe()}",
            [VersionDamage(version, (problem,))],
        ) from None
    if not isinstance(manifest, dict):
        problem = Problem(MANIFEST, "unreadable", "không phải đối tượng JSON")
        raise IndexDamagedError(
            f"phiên bản chỉ mục {version} bị hỏng: {problem.describe()}",
            [VersionDamage(version, (problem,))],
        )
    return manifest


# --- checksums -----------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksums(folder: Path) -> dict[str, dict]:
    """Size and sha256 of every file of a version or segment except its manifest and the
    reader lock."""
    return {
        item.name: {"size": item.stat().st_size, "sha256": file_digest(item)}
        for item in sorted(folder.iterdir())
        if item.is_file() and item.name not in (MANIFEST, SEGMENT_MANIFEST, IN_USE, VERIFIED)
    }


def version_segments(manifest: dict) -> list[dict]:
    """A version's segments in row order: {"id", "passages", "deleted": [doc ids]}."""
    segments = manifest.get("segments")
    return [s for s in segments if isinstance(s, dict)] if isinstance(segments, list) else []


def segment_folder(index_dir: Path, segment: str) -> Path:
    return index_dir / SEGMENTS / segment


def verify_segment(
    index_dir: Path, segment: str, *, hashes: bool = True, stamps: bool = False
) -> list[Problem]:
    """What is wrong with one segment's files; [] when it is whole. Files are named
    segments/<id>/<file>.

    With ``stamps``, a segment whose files were all hashed whole before and have not been
    written since (the same inode, size, mtime and ctime: the kernel sets ctime on any
    write, and nobody can set it back) is not hashed again: opening a version or building
    reads the new segment, not the corpus. ``qabot index verify`` always hashes."""
    prefix = f"{SEGMENTS}/{segment}/"
    if not isinstance(segment, str) or not segment or "/" in segment or segment.startswith("."):
        return [Problem(prefix, "missing", "tên phân đoạn không hợp lệ")]
    folder = segment_folder(index_dir, segment)
    try:
        record = json.loads((folder / SEGMENT_MANIFEST).read_text())
        expected = record["files"]
        if not isinstance(expected, dict):
            raise ValueError("files")
    except FileNotFoundError:
        return [Problem(prefix + SEGMENT_MANIFEST, "missing")]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [Problem(prefix + SEGMENT_MANIFEST, "unreadable", type(exc).__name__)]
    expected = {**dict.fromkeys(REQUIRED_FILES), **expected}
    if hashes and stamps and _stamp(folder, expected) == _read_stamp(folder):
        hashes = False  # sizes are still compared below
    problems = _verify_files(folder, expected, hashes=hashes)
    if hashes and not problems:
        _write_stamp(folder, expected)
    return [replace(p, file=prefix + p.file) for p in problems]


VERIFIED = "verified.json"  # a segment's files as they were when last hashed whole


def _stamp(folder: Path, expected: dict) -> dict | None:
    try:
        return {
            name: [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            for name in sorted(expected)
            for st in [(folder / name).stat()]
        }
    except OSError:
        return None


def _read_stamp(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / VERIFIED).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(folder: Path, expected: dict) -> None:
    stamp = _stamp(folder, expected)
    if stamp is None:
        return
    temporary = folder / f".{VERIFIED}.tmp"
    try:
        temporary.write_text(json.dumps(stamp))
        os.replace(temporary, folder / VERIFIED)
    except OSError:  # a read-only index folder: hashed again next time
        pass


def _verify_files(folder: Path, expected: dict, *, hashes: bool) -> list[Problem]:
    problems = []
    for name in sorted(expected):
        path = folder / name
        record = expected.get(name)
        if not path.exists():
            problems.append(Problem(name, "missing"))
        elif not path.is_file():
            problems.append(Problem(name, "not_a_file"))
        elif isinstance(record, dict):
            try:
                size = path.stat().st_size
                if size != record.get("size"):
                    problems.append(Problem(name, "size", f"{size} thay vì {record.get('size')}"))
                elif hashes and file_digest(path) != record.get("sha256"):
                    problems.append(Problem(name, "checksum"))
            except OSError as exc:
                problems.append(Problem(name, "unreadable", exc.strerror or ""))
    return problems


def verify_version(
    index_dir: Path,
    version: str,
    *,
    hashes: bool = True,
    verified: frozenset[str] = frozenset(),
    memo: dict[str, list[Problem]] | None = None,
    stamps: bool = False,
) -> list[Problem]:
    """What is wrong with one version's files and its segments' files; [] when it is whole.

    Sizes catch truncation for free; ``hashes`` also reads every file (about 1 GB/s), which
    catches changed bytes: except in the ``verified`` segments (checked by the caller before).
    ``memo`` keeps each segment's problems across calls: versions share segments.
    ``stamps``: see verify_segment.
    """
    folder = index_dir / VERSIONS / version
    try:
        manifest = read_manifest(index_dir, version)
    except IndexDamagedError as exc:
        return list(exc.damage[0].problems)
    expected = manifest.get("files")
    if "segments" not in manifest:  # before segments: a version held every file itself
        if not isinstance(expected, dict):
            expected = {name: None for name in REQUIRED_FILES}
        return _verify_files(folder, {**dict.fromkeys(REQUIRED_FILES), **expected}, hashes=hashes)
    problems = _verify_files(folder, expected if isinstance(expected, dict) else {}, hashes=hashes)
    segments = manifest.get("segments")
    if not isinstance(segments, list) or len(version_segments(manifest)) != len(segments):
        return [*problems, Problem(MANIFEST, "unreadable", "danh sách phân đoạn hỏng")]
    for segment in segments:
        segment_id = segment.get("id")
        found = memo.get(segment_id) if memo is not None and isinstance(segment_id, str) else None
        if found is None:
            found = verify_segment(
                index_dir, segment_id, hashes=hashes and segment_id not in verified, stamps=stamps
            )
            if memo is not None and isinstance(segment_id, str):
                memo[segment_id] = found
        problems += found
    return problems


# --- publishing and pruning ----------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_version(index_dir: Path, staging: Path, name: str) -> None:
    """Seal a finished staging folder (checksums into its manifest), move it into place,
    then point CURRENT at it."""
    manifest_path = staging / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["files"] = checksums(staging)
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    for item in staging.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())
    final = index_dir / VERSIONS / name
    os.replace(staging, final)
    fsync_dir(index_dir / VERSIONS)
    pointer = index_dir / CURRENT
    if pointer.is_dir():  # a damaged pointer cannot be replaced by a file; set it aside
        aside = index_dir / f".{CURRENT}.damaged-{int(time.time())}"
        log.warning("CURRENT in %s is a folder; moving it to %s", index_dir, aside.name)
        os.replace(pointer, aside)
    temporary = index_dir / f".{CURRENT}.tmp"
    with open(temporary, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, pointer)
    fsync_dir(index_dir)


def publish_segment(index_dir: Path, staging: Path, segment: str) -> None:
    """Seal a finished segment (checksums into its segment.json) and move it into place;
    no version lists it yet (a build killed now leaves it to the next prune)."""
    record_path = staging / SEGMENT_MANIFEST
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record["files"] = checksums(staging)
    record_path.write_text(json.dumps(record, ensure_ascii=False, indent=2))
    for item in staging.iterdir():
        with open(item, "rb") as handle:
            os.fsync(handle.fileno())
    _write_stamp(staging, {**dict.fromkeys(REQUIRED_FILES), **record["files"]})  # just hashed
    os.replace(staging, segment_folder(index_dir, segment))
    fsync_dir(index_dir / SEGMENTS)


def prune_versions(index_dir: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the live one, never one that a
    reader holds), the segments no remaining version lists, and stale staging folders."""
    versions_dir = index_dir / VERSIONS
    if not versions_dir.is_dir():
        return []
    deleted = _prune_versions(index_dir, versions_dir, keep)
    deleted += _prune_segments(index_dir)
    return deleted


def _prune_segments(index_dir: Path) -> list[str]:
    """Segments that no version lists (the last version using them was pruned, or a build
    was killed before publishing its version), and staging segments. A version whose
    manifest cannot be read cannot be served either, so its segments are not kept for it."""
    folder = index_dir / SEGMENTS
    if not folder.is_dir():
        return []
    used: set[str] = set()
    for version in list_versions(index_dir):
        try:
            manifest = read_manifest(index_dir, version)
        except IndexDamagedError:
            continue
        used.update(str(s.get("id")) for s in version_segments(manifest))
    deleted = []
    for path in folder.iterdir():
        if path.name not in used:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(f"{SEGMENTS}/{path.name}")
    return deleted


def _prune_versions(index_dir: Path, versions_dir: Path, keep: int) -> list[str]:
    live = current_version(index_dir)
    finished = list_versions(index_dir)
    doomed = [name for name in finished[keep:] if name != live] if keep else []
    deleted = []
    for name in doomed:
        lock = _lock_file(versions_dir / name)
        if lock is None:
            continue
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("index version %s is in use; not pruning it", name)
                continue
            shutil.rmtree(versions_dir / name, ignore_errors=True)
            deleted.append(name)
        finally:
            lock.close()
    for path in versions_dir.iterdir():
        if path.name.startswith("."):  # staging folders of killed builds
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path.name)
    return deleted


def _lock_file(folder: Path) -> IO | None:
    try:
        return open(folder / IN_USE, "a+")
    except OSError:  # a read-only index folder: nobody can prune it either
        return None


def hold_version(index_dir: Path, version: str) -> IO | None:
    """A shared lock on a version, held while the returned file stays open, so that no
    build prunes the version while it is served. None when it cannot be taken (read-only
    folder), or when the version is being deleted right now."""
    lock = _lock_file(index_dir / VERSIONS / version)
    if lock is None:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


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


# --- a report on the whole folder ------------------------------------------------------------


@dataclass(frozen=True)
class IndexReport:
    """What `qabot index verify` and `qabot index status` say about an index folder."""

    index_dir: Path
    live: str | None
    pointer: Problem | None
    versions: dict[str, tuple[Problem, ...]]  # every finished version, newest first
    cache_problem: str | None

    @property
    def serving(self) -> str | None:
        """The version a service would serve: the live one when whole, else the newest
        good older one."""
        if self.live is not None and not self.versions.get(self.live):
            return self.live
        for name, problems in self.versions.items():
            if not problems and (self.live is None or name < self.live):
                return name
        return None

    @property
    def ok(self) -> bool:
        return (
            self.live is not None
            and self.pointer is None
            and not self.versions.get(self.live)
            and self.cache_problem is None
        )

    def as_dict(self) -> dict:
        return {
            "index_dir": str(self.index_dir),
            "ok": self.ok,
            "live": self.live,
            "serving": self.serving,
            "pointer": self.pointer.as_dict() if self.pointer else None,
            "versions": [
                {"version": name, "ok": not problems, "problems": [p.as_dict() for p in problems]}
                for name, problems in self.versions.items()
            ],
            "embedding_cache": {"ok": self.cache_problem is None, "problem": self.cache_problem},
        }


def inspect_index(index_dir: Path, *, hashes: bool = True) -> IndexReport:
    from qabot.index.cache import check_cache

    memo: dict[str, list[Problem]] = {}  # a segment several versions list is read once
    return IndexReport(
        index_dir=index_dir,
        live=current_version(index_dir),
        pointer=pointer_problem(index_dir),
        versions={
            v: tuple(verify_version(index_dir, v, hashes=hashes, memo=memo))
            for v in list_versions(index_dir)
        },
        cache_problem=check_cache(index_dir / CACHE),
    )
