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
from qabot.conversation import resolve_conversation
from qabot.embedding import Embedder
from qabot.index import BuildSummary, IndexMissingError, LoadedIndex, build_index, open_index
from qabot.index.bm25 import FOLDED_PREFIX
from qabot.index.meta import DocumentInfo, ParagraphRecord
from qabot.index.store import current_version
from qabot.ingest import discover
from qabot.library import DEFAULT_MAX_BYTES, AddedFile, LibraryError, add_file, removing
from qabot.search import Searcher
from qabot.text import fold

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
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._docs_watcher: threading.Thread | None = None
        self.reload()

    # --- index lifecycle ---------------------------------------------------------------

    @property
    def index(self) -> LoadedIndex | None:
        searcher = self._searcher
        return searcher.index if searcher else None

    def reload(self) -> bool:
        """Load the live index version if it differs from the one in use. True if switched."""
        with self._lock:
            live = current_version(self.index_dir)
            current = self._searcher.index.version if self._searcher else None
            if live is None or live == current:
                return False
            try:
                index = open_index(self.index_dir, self.embedder.id)
            except IndexMissingError:
                return False
            # Requests in flight keep the Searcher they started with.
            self._searcher = Searcher(index, self.embedder)
            log.info("serving index version %s (%d passages)", index.version, len(index.passages))
            return True

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
        """The self-contained question to search (the conversation step): a follow-up gets
        the subject, place and period of the earlier questions it leans on."""
        if not history:
            return question
        vocabulary = searcher.index.bm25.vocabulary

        def known(word: str) -> bool:
            # A word typed without accents is known when its folded form is.
            return word in vocabulary or FOLDED_PREFIX + fold(word) in vocabulary

        # Searching an implicit follow-up as typed too, and keeping it when it is answered at
        # least as confidently as the rewrite, changed nothing on the conversation dev set
        # (hit@1 0.864, answer@1 0.841) at twice the search time; with a 0.1 margin it lost
        # 0.045 hit@1. One search, then.
        step = resolve_conversation(question, history, known)
        if step.rewritten:
            log.info("follow-up (%s) searched as: %s", step.kind, step.standalone)
        return step.standalone

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
            return {**base, "status": "no_index", "version": None, "documents": 0, "passages": 0}
        return {
            **base,
            "status": "ok",
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
        summary = build_index(
            self._docs(), self.index_dir, self.embedder, wait_seconds=wait_seconds
        )
        self.reload()
        return summary

    def add_documents(
        self, files: list[tuple[str, bytes]], wait_seconds: float = 60.0
    ) -> tuple[list[AddedFile], BuildSummary]:
        """Validate and store uploaded files, then update the index. All or nothing: a bad
        file in the batch, or a failed build, leaves the docs folder as it was."""
        docs = self._docs()
        added: list[AddedFile] = []
        try:
            for name, data in files:
                added.append(add_file(docs, name, data, self.max_upload_bytes))
            return added, self.rebuild(wait_seconds)
        except BaseException:
            # Nothing half-done: the files go when they cannot all be stored and indexed.
            for item in added:
                item.path.unlink(missing_ok=True)
            raise

    def remove_documents(self, doc_ids: list[str], wait_seconds: float = 60.0) -> BuildSummary:
        # The files come back if the index cannot be updated, so folder and index agree.
        with removing(self._docs(), doc_ids):
            return self.rebuild(wait_seconds)
