"""QAService: the one object interfaces talk to. Owns the embedder and the live index.

Interfaces (the HTTP API, the Telegram bot, the command line, the web page) import from
here only: the service re-exports the types and errors they use, so they never reach into
the index, ingest or search modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from qabot.activity import Activity
from qabot.answer import Answer, CitedPassage, compose
from qabot.calibration import Calibration, calibrate
from qabot.catalogue import (
    DOCUMENTS_PAGE,
    MAX_DOCUMENTS_PAGE,
    MAX_FILTER_CHARS,
    Catalogue,
    DocumentPage,
)
from qabot.conversation import STANDALONE, Step, resolve_conversation
from qabot.embedding import Embedder, create_embedder
from qabot.errors import (
    BotConfigError,
    BusyError,
    CalibrationError,
    CommandError,
    EmbedderError,
    IndexBusyError,
    IndexDamagedError,
    IndexStoreError,
    LibraryError,
    LogUnavailableError,
    NotFoundError,
    NotReadyError,
    QabotError,
    QuestionError,
)
from qabot.examples import choose_examples
from qabot.fitted import for_embedder
from qabot.index import BuildSummary, IndexMissingError, LoadedIndex, build_index, open_index
from qabot.index.build import Progress
from qabot.index.layout import (
    CURRENT,
    FILE_HASHES,
    IndexReport,
    current_version,
    inspect_index,
    read_manifest,
    writer_lock,
)
from qabot.index.loaded import live_documents
from qabot.index.meta import DocumentInfo, ParagraphRecord
from qabot.ingest import discover, load_file_hashes
from qabot.library import (
    DEFAULT_MAX_BYTES,
    AddedFile,
    Change,
    check_size,
    park_files,
    recover,
    safe_name,
    stage_files,
)
from qabot.messages import LONG_QUESTIONS_BUSY, OTHER_LANGUAGE_HINT, no_index_in
from qabot.query import is_long_question
from qabot.questionlog import (
    MAX_COMMENT_CHARS,
    LoggedAnswer,
    QuestionLog,
    open_log,
    parse_period,
)
from qabot.search import Searcher, SearchResult
from qabot.terms import FOLDED_PREFIX
from qabot.text import fold, looks_vietnamese

__all__ = [
    "DOCUMENTS_PAGE",
    "MAX_COMMENT_CHARS",
    "MAX_DOCUMENTS_PAGE",
    "MAX_FILTER_CHARS",
    "MAX_HISTORY",
    "MAX_QUESTION_CHARS",
    "MAX_TOP_K",
    "AddedFile",
    "Answer",
    "BotConfigError",
    "BuildSummary",
    "Calibration",
    "CalibrationError",
    "CitedPassage",
    "CommandError",
    "DocumentInfo",
    "DocumentPage",
    "Embedder",
    "EmbedderError",
    "IndexBusyError",
    "IndexDamagedError",
    "IndexReport",
    "IndexStatus",
    "IndexStoreError",
    "LibraryError",
    "LogUnavailableError",
    "MorePassages",
    "NotFoundError",
    "NotReadyError",
    "ParagraphContext",
    "ParagraphRecord",
    "QAService",
    "QabotError",
    "QuestionError",
    "QuestionLog",
    "build_index",
    "build_library",
    "calibrate",
    "clean_history",
    "clean_question",
    "create_embedder",
    "index_status",
    "inspect_index",
    "open_log",
    "parse_period",
    "passage_key",
]

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 20
MAX_HISTORY = 10  # earlier questions of a conversation that a question may lean on
# Long questions (query.is_long_question) answered at once: one, so that on a small
# machine a burst of them leaves a core to everyone else's questions.
LONG_QUESTION_SLOTS = 1
LONG_QUESTION_QUEUE = 4  # long questions that may wait for a slot; more are refused (busy)


# Allocations between two collections of the youngest generation, for a serving process
# (Python's default: 700). A question makes tens of thousands of short-lived tuples, lists
# and dicts, nearly all freed as it ends; a collection every 700 of them walked each young
# survivor again and again. At a million passages, the first 100 questions of a fresh
# process took 9.85-10.0 ms (p50) against 10.0-10.4 with the default, in three runs each.
YOUNG_GC_OBJECTS = 20_000


def freeze_loaded_objects() -> int:
    """For a process that answers until it is stopped (serve, the bot), once its model and
    index are loaded: what is alive then (libraries, model, index) lives as long as the
    process, so the cyclic garbage collector stops walking it (gc.freeze). With
    sentence-transformers that is about 450,000 objects, and each full collection paused a
    question by 200-350 ms. The objects questions make are still collected, less often
    (YOUNG_GC_OBJECTS). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GC_OBJECTS, *gc.get_threshold()[1:])
    frozen = gc.get_freeze_count()
    log.info("loaded objects frozen for the garbage collector count=%d", frozen)
    return frozen


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


@dataclass(frozen=True)
class MorePassages:
    """The next passages for a question whose first passages were shown ("Xem thêm")."""

    passages: list[CitedPassage]  # not shown before, best first
    more: bool  # whether asking again may give still more


def passage_key(passage: CitedPassage) -> tuple[str, int, str]:
    """What makes a cited passage the same one in two answers to the same question."""
    return passage.doc_id, passage.paragraph, passage.text


@dataclass(frozen=True)
class IndexStatus:
    """The version of an index folder that would be served, as its manifest describes it,
    and what is damaged (``report``)."""

    index_dir: Path
    version: str  # the version served: the live one, or the newest good one when it is damaged
    live: str | None  # what CURRENT names
    created_at: str | None
    embedder: str | None
    dim: int | None
    documents: int | None
    passages: int | None
    skipped: list[dict]  # {"source", "reason"} of each file the build skipped
    calibration: str  # "fitted" (a confidence model for the embedder) or "rank-only"
    report: IndexReport

    def as_dict(self) -> dict:
        return {
            "index_dir": str(self.index_dir),
            "status": "ok" if self.report.ok else "damaged",
            "version": self.version,
            "live": self.live,
            "created_at": self.created_at,
            "embedder": self.embedder,
            "dim": self.dim,
            "documents": self.documents,
            "passages": self.passages,
            "skipped": self.skipped,
            "calibration": self.calibration,
            "damage": self.report.as_dict(),
        }


def index_status(index_dir: Path) -> IndexStatus:
    """The index folder's state without loading it (no model, no vectors): NotReadyError when
    there is no index, IndexDamagedError when no version is good."""
    index_dir = Path(index_dir)
    report = inspect_index(index_dir)
    version = report.serving
    if version is None:
        if report.versions:
            raise IndexDamagedError(
                f"chỉ mục trong {index_dir} bị hỏng và không còn phiên bản tốt nào; "
                "xem chi tiết bằng qabot index verify, rồi chạy: qabot index build"
            )
        raise NotReadyError(no_index_in(index_dir))
    manifest = read_manifest(index_dir, version)
    return IndexStatus(
        index_dir=index_dir,
        version=version,
        live=report.live,
        created_at=manifest.get("created_at"),
        embedder=manifest.get("embedder_id"),
        dim=manifest.get("dim"),
        documents=manifest.get("documents"),
        passages=manifest.get("passages"),
        skipped=list(manifest.get("skipped", [])),
        calibration=calibration_of(manifest.get("embedder_id", ""), index_dir),
        report=report,
    )


def build_library(
    docs_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    progress: Progress | None = None,
    wait_seconds: float = 0.0,
) -> BuildSummary:
    """Bring an index up to date with its docs folder (``qabot index build``). Changes of
    the folder that a killed process left half done are settled first."""
    return build_index(
        docs_dir,
        index_dir,
        embedder,
        progress=progress,
        wait_seconds=wait_seconds,
        before_scan=lambda: recover(docs_dir, live_documents(index_dir)),
    )


def calibration_of(embedder_id: str, index_dir: Path | None = None) -> str:
    """How ``found`` is decided for an embedder: "fitted" when a confidence model was fitted
    for it (qabot.fitted), "rank-only" when the rank-only rule applies (qabot.search)."""
    return "fitted" if for_embedder(embedder_id, index_dir).calibrated else "rank-only"


class QAService:
    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        docs_dir: Path | None = None,
        max_upload_bytes: int = DEFAULT_MAX_BYTES,
        question_log: QuestionLog | None = None,
        long_question_slots: int = LONG_QUESTION_SLOTS,
        serve: bool = True,
    ) -> None:
        """``serve``: load the live index to answer questions. Without it the service only
        changes the library (the command line's `index add` / `index remove`): the index is
        never opened, which at a million passages saves a few seconds before and after."""
        self.serving = serve
        self.index_dir = Path(index_dir)
        self.docs_dir = Path(docs_dir) if docs_dir is not None else None
        self.embedder = embedder
        self.max_upload_bytes = max_upload_bytes
        self.question_log = question_log
        self.activity = Activity()
        self.started = time.monotonic()
        # Questions beyond query.bound_question's bounds are answered this many at a time:
        # bounded, one still costs the embedder 2-5 times a normal question, and a burst of
        # them on every core made everyone else wait. A few more may wait for a turn; the
        # rest are refused at once, so waiting ones never hold all the request threads.
        self._long_running = threading.BoundedSemaphore(long_question_slots)
        self._long_admitted = threading.BoundedSemaphore(long_question_slots + LONG_QUESTION_QUEUE)
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()
        # The CURRENT pointer as last tried, so a damaged live version is reported once and
        # not verified again on every poll; the problems found when nothing could be served.
        self._tried: tuple | None = None
        self.damage: list = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._docs_watcher: threading.Thread | None = None
        self._examples: dict[tuple[str, int], list[str]] = {}  # (index version, n) -> questions
        self._examples_lock = threading.Lock()
        self._catalogue: tuple[str, Catalogue] | None = None  # (index version, its reports)
        # The hashes the last build saved: an upload's duplicate check then reads only the
        # files changed since, not every report of the folder (0.9 GB at a million passages).
        load_file_hashes(self.index_dir / FILE_HASHES)
        if serve:
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
                # Segments the served version shares with the new one are not opened twice.
                previous = self._searcher.index if self._searcher else None
                index = open_index(self.index_dir, self.embedder.id, previous)
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
        if self.question_log is not None:
            self.question_log.close()

    def _require(self) -> Searcher:
        searcher = self._searcher
        if searcher is None:
            raise NotReadyError(no_index_in(self.index_dir))
        return searcher

    # --- questions ---------------------------------------------------------------------

    def ask(
        self,
        question: str,
        top_k: int = 5,
        history: Sequence[str] | None = None,
        *,
        channel: str | None = "api",
        user: str | None = None,
    ) -> Answer:
        """Answer ``question``; ``history`` holds the conversation's earlier questions, oldest
        first, which a follow-up ("Còn năm 2024 thì sao?") may lean on.

        ``channel`` (api, telegram, web, cli) is where a person asked; the answer is then
        counted and written to the question log, and carries an ``answer_id`` for feedback.
        None is for questions the program asks itself (example questions, "Xem thêm"), which
        are neither counted nor logged. ``user`` is a Telegram user or chat id; the log keeps
        only its salted hash. A long question (query.is_long_question) waits for its turn,
        or raises BusyError when enough already wait."""
        text = clean_question(question)
        earlier = clean_history(history)
        if not 1 <= top_k <= MAX_TOP_K:
            raise QuestionError("invalid_top_k", f"top_k phải nằm trong khoảng 1 đến {MAX_TOP_K}.")
        searcher = self._require()
        long = is_long_question(text) or any(is_long_question(q) for q in earlier)
        with self._long_question_turn() if long else contextlib.nullcontext():
            started = time.perf_counter()
            step = self._standalone(text, earlier, searcher)
            result = searcher.search(step.asked, top_k, step.context)
            took_ms = (time.perf_counter() - started) * 1000
        answer = compose(result, searcher.index, searcher.models, took_ms, question=text)
        if channel is None:
            return answer
        self.activity.answered(channel, answer.found)
        return self._logged(answer, result, channel, user)

    def waits_its_turn(self, question: str, history: Sequence[str] | None = None) -> bool:
        """Whether ``ask`` may wait for its turn with this question: a long one (with a long
        one in its history) waits while another long question is answered. An event loop
        answers the others itself (qabot.http.routes) and never waits there. False for a
        question ``ask`` refuses at once."""
        try:
            text, earlier = clean_question(question), clean_history(history)
        except QuestionError:
            return False
        return is_long_question(text) or any(is_long_question(q) for q in earlier)

    @contextlib.contextmanager
    def _long_question_turn(self) -> Iterator[None]:
        if not self._long_admitted.acquire(blocking=False):
            raise BusyError(LONG_QUESTIONS_BUSY)
        try:
            with self._long_running:
                yield
        finally:
            self._long_admitted.release()

    def _logged(
        self, answer: Answer, result: SearchResult, channel: str, user: str | None
    ) -> Answer:
        """The answer with its id, queued for the log; a log problem never fails an answer."""
        question_log = self.question_log
        if question_log is None:
            return answer
        try:
            answer_id = secrets.token_urlsafe(9)
            question_log.record(
                LoggedAnswer(
                    answer_id=answer_id,
                    at=time.time(),
                    channel=channel,
                    question=answer.question,
                    interpreted_question=answer.interpreted_question,
                    found=answer.found,
                    confidence=round(result.confidence, 4),
                    took_ms=answer.took_ms,
                    citations=tuple((p.doc_id, p.paragraph) for p in answer.passages),
                    user=user,
                )
            )
        except Exception:
            log.exception("queueing an answer for the question log failed")
            return answer
        return dataclasses.replace(answer, answer_id=answer_id)

    def feedback(self, answer_id: str, helpful: bool | None, comment: str | None = None) -> None:
        """Keep a reader's verdict on an answer with its question. ``helpful`` None adds a
        comment to the verdict already given. Raises NotFoundError for an unknown answer and
        LogUnavailableError when there is no log to keep it in."""
        if self.question_log is None:
            raise LogUnavailableError("the question log is off")
        if not self.question_log.feedback(answer_id, helpful, comment):
            raise NotFoundError(f"Không có câu trả lời mã {answer_id!r} trong nhật ký câu hỏi.")

    def report(self, since: timedelta) -> dict:
        """What people asked in the last ``since``: see QuestionLog.report. The reports of the
        live index are listed so those nobody cited show too."""
        if self.question_log is None:
            raise LogUnavailableError("the question log is off")
        index = self.index
        documents = [(d.doc_id, d.title) for d in index.documents] if index is not None else []
        return self.question_log.report(since, documents)

    def _standalone(self, question: str, history: list[str], searcher: Searcher) -> Step:
        """The self-contained question to search (the conversation step): a follow-up gets
        the subject, place and period of the earlier questions it leans on, as context."""
        if not history:
            return Step(question, question, STANDALONE)
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
        return step

    def more_passages(
        self,
        question: str,
        shown: Sequence[CitedPassage],
        count: int = 3,
        history: Sequence[str] | None = None,
    ) -> MorePassages:
        """Up to ``count`` passages for ``question`` beyond those already ``shown`` ("Xem
        thêm"): the question is asked again with a larger top_k, and passages shown before
        (same document, paragraph and text) are left out. None when the answer is not found
        or MAX_TOP_K passages have been shown."""
        if len(shown) >= MAX_TOP_K:
            return MorePassages([], more=False)
        top_k = min(MAX_TOP_K, len(shown) + count)
        answer = self.ask(question, top_k, history, channel=None)  # asked before, logged then
        seen = {passage_key(p) for p in shown}
        fresh = [p for p in answer.passages if passage_key(p) not in seen][:count]
        if not answer.found or not fresh:
            return MorePassages([], more=False)
        more = len(answer.passages) >= top_k and len(shown) + len(fresh) < MAX_TOP_K
        return MorePassages(fresh, more)

    def hint_for(self, answer: Answer) -> str | None:
        """A sentence interfaces show beside an answer that was not found, when the reason
        is likely the question itself: it is not in Vietnamese (retrieval is multilingual,
        but the found / not-found judgement leans on Vietnamese words). None otherwise."""
        if answer.found or looks_vietnamese(answer.question):
            return None
        return OTHER_LANGUAGE_HINT

    def example_questions(self, n: int = 4) -> list[str]:
        """Up to ``n`` example questions for the live index: generic questions the reports
        answer, then questions about report titles. Chosen once per index version (each
        candidate is asked), so the first call after a new version takes a moment."""
        searcher = self._searcher
        if searcher is None or n <= 0:
            return []
        key = (searcher.index.version, n)
        with self._examples_lock:
            cached = self._examples.get(key)
            if cached is None:

                def answerable(question: str) -> bool:
                    return self.ask(question, 1, channel=None).found  # not a person's

                newest = self._catalogue_of(searcher).documents
                cached = choose_examples(answerable, (d.title for d in newest), count=n)
                self._examples = {
                    k: v for k, v in self._examples.items() if k[0] == key[0]
                }  # older versions' examples are dropped
                self._examples[key] = cached
        return list(cached)

    # --- documents ---------------------------------------------------------------------

    def documents(self) -> list[DocumentInfo]:
        """Every indexed report, newest first."""
        return list(self._catalogue_of(self._require()).documents)

    def find_documents(
        self, query: str = "", offset: int = 0, limit: int | None = DOCUMENTS_PAGE
    ) -> DocumentPage:
        """A page of the indexed reports, newest first: those with a word of the title,
        file name or date starting with each word of ``query`` (diacritics optional); at
        most ``limit`` (up to MAX_DOCUMENTS_PAGE; None: all) from ``offset``."""
        return self._catalogue_of(self._require()).page(query, offset, limit)

    def document(self, doc_id: str) -> DocumentInfo | None:
        return self._require().index.document(doc_id)

    def _catalogue_of(self, searcher: Searcher) -> Catalogue:
        # Sorted and folded once per index version: 15,000 reports take about 0.2 s
        # (bench/catalogue.py), then a page costs microseconds and a filter a few ms.
        version = searcher.index.version
        cached = self._catalogue
        if cached is None or cached[0] != version:
            cached = (version, Catalogue(searcher.index.documents))
            self._catalogue = cached
        return cached[1]

    def document_sizes(self, documents: Sequence[DocumentInfo]) -> dict[str, int]:
        """Bytes of each document's file in the docs folder; a document whose file is not
        there (an index built elsewhere) is left out."""
        docs = self.docs_dir
        sizes: dict[str, int] = {}
        if docs is None:
            return sizes
        for document in documents:
            try:
                sizes[document.doc_id] = (docs / document.doc_id).stat().st_size
            except OSError:
                continue
        return sizes

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
        models = self._searcher.models if self._searcher else None
        return {
            **base,
            # degraded: the live version is damaged and an older good one is served.
            "status": "degraded" if self.damage else "ok",
            "damaged": self.damage,
            # "fitted": found is decided by a confidence model fitted for this embedder;
            # "rank-only": none exists yet (qabot calibrate fits one), see qabot.search.
            "calibration": "fitted" if models and models.calibrated else "rank-only",
            "version": index.version,
            "created_at": index.manifest.get("created_at"),
            "documents": len(index.documents),
            "passages": index.live_passages,
        }

    # --- updating the library ------------------------------------------------------------

    def _docs(self) -> Path:
        if self.docs_dir is None:
            raise LibraryError("no_docs_dir", "Dịch vụ này không được cấu hình thư mục tài liệu.")
        return self.docs_dir

    def rebuild(self, wait_seconds: float = 60.0) -> BuildSummary:
        """Bring the index up to date with the docs folder and switch to it."""
        docs = self._docs()
        started = time.perf_counter()
        try:
            summary = build_index(
                docs,
                self.index_dir,
                self.embedder,
                wait_seconds=wait_seconds,
                before_scan=lambda: self._recover_docs(docs),
            )
            if self.serving:
                self.reload()
        except BaseException:
            self.activity.rebuild_failed()
            raise
        self.activity.rebuilt(time.perf_counter() - started)
        return summary

    def check_upload(self, name: str, size: int | None = None) -> None:
        """Refuse an upload by its name and announced size alone (LibraryError), before its
        bytes are fetched; ``add_documents`` checks everything again."""
        filename = safe_name(name)
        if size is not None:
            check_size(filename, size, self.max_upload_bytes)

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
        return change.added, self._rebuild_for(change, wait_seconds)

    def remove_documents(self, doc_ids: list[str], wait_seconds: float = 60.0) -> BuildSummary:
        # The files come back if the index cannot be updated, so folder and index agree.
        return self._rebuild_for(park_files(self._docs(), doc_ids), wait_seconds)

    def _rebuild_for(self, change: Change, wait_seconds: float) -> BuildSummary:
        """Rebuild after a journalled change of the docs folder; the change is settled
        against the index if the build fails, so folder and index agree."""
        try:
            summary = self.rebuild(wait_seconds)
        except BaseException:
            self._settle(change)
            raise
        change.done()
        return summary
