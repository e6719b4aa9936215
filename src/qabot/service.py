"""QAService: the one object interfaces talk to. Owns the embedder and the live index."""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qabot.answer import Answer, compose
from qabot.embedding import Embedder
from qabot.index import (
    BuildSummary,
    IndexDamagedError,
    IndexMissingError,
    LoadedIndex,
    build_index,
    open_index,
)
from qabot.index.layout import CURRENT, IndexBusyError, current_version, writer_lock
from qabot.index.loaded import live_documents
from qabot.index.meta import DocumentInfo, ParagraphRecord
from qabot.ingest import discover
from qabot.library import (
    DEFAULT_MAX_BYTES,
    AddedFile,
    Change,
    LibraryError,
    park_files,
    recover,
    stage_files,
)
from qabot.search import Searcher

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 20
MAX_HISTORY = 10  # earlier questions of a conversation that a question may lean on


class QuestionError(ValueError):
    """A question that cannot be asked; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotReadyError(RuntimeError):
    """No index is loaded yet."""


class NotFoundError(LookupError):
    pass


def clean_question(question: str | None) -> str:
    """Control characters out, spaces collapsed; raises QuestionError when nothing is left."""
    if question is None:
        raise QuestionError("empty_question", "Vui lòng nhập câu hỏi.")
    text = "".join(
        " " if unicodedata.category(ch).startswith("C") else ch
        for ch in unicodedata.normalize("NFC", question)
    )
    text = " ".join(text.split())
    if not text:
        raise QuestionError("empty_question", "Câu hỏi đang để trống, vui lòng nhập nội dung.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            "question_too_long",
            f"Câu hỏi dài quá {MAX_QUESTION_CHARS} ký tự, vui lòng rút gọn.",
        )
    return text


def clean_history(history: Sequence[str] | None) -> list[str]:
    """A conversation's earlier questions, oldest first, each cleaned like a question."""
    if not history:
        return []
    if len(history) > MAX_HISTORY:
        raise QuestionError(
            "history_too_long",
            f"Lịch sử hội thoại chỉ được gồm tối đa {MAX_HISTORY} câu hỏi trước đó.",
        )
    cleaned = []
    for item in history:
        if not isinstance(item, str):
            raise QuestionError(
                "invalid_history", "Mỗi mục của lịch sử hội thoại phải là một câu hỏi."
            )
        cleaned.append(clean_question(item))
    return cleaned


@dataclass(frozen=True)
class ParagraphContext:
    document: DocumentInfo
    paragraph: int
    paragraphs: list[ParagraphRecord]  # the cited paragraph with its neighbours


class QAService:
    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        docs_dir: Path | None = None,
        max_upload_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.docs_dir = Path(docs_dir) if docs_dir is not None else None
        self.embedder = embedder
        self.max_upload_bytes = max_upload_bytes
        self.started = time.monotonic()
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        # The CURRENT pointer as last tried, so a damaged live version is reported once and
        # not verified again on every poll; the problems found when nothing could be served.
        self._tried: tuple | None = None
        self.damage: list = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._docs_watcher: threading.Thread | None = None
        self.reload()
        self._recover_at_start()

    # --- index lifecycle ---------------------------------------------------------------

    @property
    def index(self) -> LoadedIndex | None:
        searcher = self._searcher
        return searcher.index if searcher else None

    def reload(self) -> bool:
        """Load the live index version if it differs from the one in use. True if switched.

        A damaged live version is logged and the newest good version served instead (see
        qabot.index.loaded.open_index); ``status()`` reports the damage."""
        with self._lock:
            live = current_version(self.index_dir)
            current = self._searcher.index.version if self._searcher else None
            if live is not None and live == current:
                return False
            pointer = self._pointer_state(live)
            if pointer == self._tried:
                return False  # this pointer was tried already; versions never change
            try:
                index = open_index(self.index_dir, self.embedder.id)
            except IndexMissingError:
                return False
            except IndexDamagedError as exc:
                self._tried = pointer
                self.damage = [d.as_dict() for d in exc.damage]
                log.error("no index version can be served: %s", exc)
                return False
            self._tried = pointer
            self.damage = [d.as_dict() for d in index.damaged]
            if index.version == current:
                return False
            # Requests in flight keep the Searcher they started with.
            self._searcher = Searcher(index, self.embedder)
            log.info("serving index version %s (%d passages)", index.version, len(index.passages))
            return True

    def _pointer_state(self, live: str | None) -> tuple:
        try:
            stat = (self.index_dir / CURRENT).stat()
            return (live, stat.st_mtime_ns, stat.st_ino)
        except OSError:
            return (live, None, None)

    def watch(self, interval: float) -> None:
        """Poll for new index versions in a background thread."""
        if self._watcher is not None:
            return
        self._stop.clear()  # a service closed before may be watched again

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reload()
                except Exception:  # keep serving the old version
                    log.exception("reloading the index failed")

        self._watcher = threading.Thread(target=loop, name="qabot-index-watch", daemon=True)
        self._watcher.start()

    def watch_docs(self, interval: float) -> None:
        """Rebuild the index when files in the docs folder appear, change or disappear."""
        docs = self._docs()
        if self._docs_watcher is not None:
            return
        self._stop.clear()

        def snapshot() -> dict[str, tuple[int, int]]:
            state = {}
            for path in discover(docs) if docs.is_dir() else []:
                try:
                    stat = path.stat()
                except OSError:
                    continue
                state[str(path)] = (stat.st_mtime_ns, stat.st_size)
            return state

        seen = snapshot()  # taken now, so a file that lands right after this call counts

        def loop() -> None:
            nonlocal seen
            while not self._stop.wait(interval):
                current = snapshot()
                if current == seen:
                    continue
                seen = current
                try:
                    summary = self.rebuild(wait_seconds=interval * 10)
                    log.info(
                        "docs folder changed: %d added, %d changed, %d removed",
                        summary.added,
                        summary.changed,
                        summary.removed,
                    )
                except Exception:
                    log.exception("updating the index after a docs change failed")

        self._docs_watcher = threading.Thread(target=loop, name="qabot-docs-watch", daemon=True)
        self._docs_watcher.start()

    def close(self) -> None:
        self._stop.set()
        for thread in (self._watcher, self._docs_watcher):
            if thread is not None:
                thread.join(timeout=5)
        self._watcher = self._docs_watcher = None

    def _require(self) -> Searcher:
        searcher = self._searcher
        if searcher is None:
            raise NotReadyError(
                f"Chưa có chỉ mục trong {self.index_dir}. Hãy tạo bằng lệnh: qabot index build"
            )
        return searcher

    # --- questions ---------------------------------------------------------------------

    def ask(self, question: str, top_k: int = 5, history: Sequence[str] | None = None) -> Answer:
        """Answer ``question``; ``history`` holds the conversation's earlier questions, oldest
        first, which a follow-up ("Còn năm 2024 thì sao?") may lean on."""
        text = clean_question(question)
        earlier = clean_history(history)
        if not 1 <= top_k <= MAX_TOP_K:
            raise QuestionError("invalid_top_k", f"top_k phải nằm trong khoảng 1 đến {MAX_TOP_K}.")
        searcher = self._require()
        started = time.perf_counter()
        searched = self._standalone(text, earlier, searcher)
        result = searcher.search(searched, top_k)
        took_ms = (time.perf_counter() - started) * 1000
        return compose(result, searcher.index, took_ms, question=text)

    def _standalone(self, question: str, history: list[str], searcher: Searcher) -> str:
        """The self-contained question to search (the conversation step)."""
        return question

    # --- documents ---------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        return list(self._require().index.documents)

    def paragraph_context(self, doc_id: str, paragraph: int, radius: int = 1) -> ParagraphContext:
        index = self._require().index
        document = index.document(doc_id)
        if document is None:
            raise NotFoundError(f"Không có tài liệu {doc_id!r}.")
        if not 1 <= paragraph <= document.paragraphs:
            raise NotFoundError(
                f"Tài liệu {doc_id!r} có {document.paragraphs} đoạn; không có đoạn {paragraph}."
            )
        rows = index.paragraphs(doc_id, paragraph - radius, paragraph + radius)
        return ParagraphContext(document, paragraph, rows)

    def status(self) -> dict:
        index = self.index
        base = {
            "index_dir": str(self.index_dir),
            "embedder": self.embedder.id,
            "uptime_seconds": round(time.monotonic() - self.started, 1),
        }
        if index is None:
            state = "damaged" if self.damage else "no_index"
            return {
                **base,
                "status": state,
                "version": None,
                "documents": 0,
                "passages": 0,
                "damaged": self.damage,
            }
        return {
            **base,
            # degraded: the live version is damaged and an older good one is served.
            "status": "degraded" if self.damage else "ok",
            "damaged": self.damage,
            "version": index.version,
            "created_at": index.manifest.get("created_at"),
            "documents": len(index.documents),
            "passages": len(index.passages),
        }

    # --- updating the library ------------------------------------------------------------

    def _docs(self) -> Path:
        if self.docs_dir is None:
            raise LibraryError("no_docs_dir", "Dịch vụ này không được cấu hình thư mục tài liệu.")
        return self.docs_dir

    def rebuild(self, wait_seconds: float = 60.0) -> BuildSummary:
        """Bring the index up to date with the docs folder and switch to it."""
        docs = self._docs()
        summary = build_index(
            docs,
            self.index_dir,
            self.embedder,
            wait_seconds=wait_seconds,
            before_scan=lambda: self._recover_docs(docs),
        )
        self.reload()
        return summary

    def _recover_docs(self, docs: Path) -> None:
        """Settle docs-folder changes a killed process left half done (under the writer
        lock, so the live index cannot change meanwhile)."""
        recover(docs, live_documents(self.index_dir))

    def _recover_at_start(self) -> None:
        if self.docs_dir is None or not self.docs_dir.is_dir():
            return
        try:
            with writer_lock(self.index_dir):
                self._recover_docs(self.docs_dir)
        except IndexBusyError:
            pass  # the build running now settles them before it reads the folder
        except OSError as exc:  # a read-only index or docs folder: nothing can be half done
            log.warning("could not check the docs journal: %s", exc)

    def _settle(self, change: Change) -> None:
        """A change whose build failed: make the folder agree with whatever the index holds
        now (a concurrent build may have indexed an added file). Done under the writer lock.
        When another build holds it, nothing is deleted on a guess: removed files come back
        at once, and added files stay for the next build to settle against its index."""
        try:
            with writer_lock(self.index_dir, wait_seconds=1.0):
                change.settle(live_documents(self.index_dir))
        except IndexBusyError:
            if change.op == "remove":
                change.settle(None)
            else:
                log.warning("index busy; the next build settles added files (%s)", change.entry)
                change.release()
        except BaseException:
            change.release()
            raise

    def add_documents(
        self, files: list[tuple[str, bytes]], wait_seconds: float = 60.0
    ) -> tuple[list[AddedFile], BuildSummary]:
        """Validate and store uploaded files, then update the index. All or nothing: a bad
        file in the batch, or a failed build, leaves the docs folder agreeing with the index
        (an unreadable file is refused before it reaches the folder)."""
        change = stage_files(self._docs(), files, self.max_upload_bytes)
        try:
            summary = self.rebuild(wait_seconds)
        except BaseException:
            self._settle(change)
            raise
        change.done()
        return change.added, summary

    def remove_documents(self, doc_ids: list[str], wait_seconds: float = 60.0) -> BuildSummary:
        # The files come back if the index cannot be updated, so folder and index agree.
        change = park_files(self._docs(), doc_ids)
        try:
            summary = self.rebuild(wait_seconds)
        except BaseException:
            self._settle(change)
            raise
        change.done()
        return summary
