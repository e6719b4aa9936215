"""The question log: what people asked, what they got, and what they thought of it.

One SQLite file (WAL mode) beside the index folder. Answers are written by one background
thread from a bounded queue, so logging never slows or fails an answer: when the queue is
full the entry is dropped with a warning, and a write that fails (read-only or broken file)
is logged and forgotten. Telegram user and chat ids are stored only as salted hashes; the
salt lives in the log file itself, so deleting the file forgets everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import queue
import re
import secrets
import sqlite3
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from qabot.errors import LogUnavailableError
from qabot.text import fold, tokens

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 180
QUEUE_SIZE = 1000  # answers waiting to be written; a burst beyond this is dropped
PURGE_EVERY_SECONDS = 24 * 3600
WRITE_TIMEOUT_SECONDS = 5.0  # a writer waiting longer on a locked file gives up the entry
MAX_COMMENT_CHARS = 1000
# Two questions are "the same question" when their folded syllable sets overlap this much
# (Jaccard): "Thời tiết ở Hà Nội ngày mai?" and "thoi tiet ha noi ngay mai the nao" share
# 6 of 9 syllables (0.67); "Ai là bí thư?" and "Ai là chủ tịch?" share 2 of 6 (0.33).
SAME_QUESTION_JACCARD = 0.5
MAX_GROUPED_QUESTIONS = 5000  # distinct questions grouped per report (the most frequent)
REPORT_ROWS = 10  # lines per list in a report

SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    answer_id TEXT PRIMARY KEY,
    at REAL NOT NULL,               -- Unix time the answer went out
    channel TEXT NOT NULL,          -- api, telegram, web, cli
    question TEXT NOT NULL,
    interpreted_question TEXT NOT NULL,
    found INTEGER NOT NULL,
    confidence REAL,
    took_ms REAL NOT NULL,
    citations TEXT NOT NULL,        -- JSON [[doc_id, paragraph], ...] in rank order
    user_hash TEXT,                 -- salted hash of a Telegram user or chat id, never the id
    helpful INTEGER,                -- feedback: 1 helpful, 0 wrong, NULL none
    comment TEXT,
    feedback_at REAL
);
CREATE INDEX IF NOT EXISTS questions_at ON questions (at);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class LoggedAnswer:
    answer_id: str
    at: float
    channel: str
    question: str
    interpreted_question: str
    found: bool
    confidence: float | None
    took_ms: float
    citations: tuple[tuple[str, int], ...]
    user: str | None = None  # raw id, hashed by the writer before anything is stored


@dataclass(frozen=True)
class _Feedback:
    answer_id: str
    helpful: bool | None  # None: only a comment, added to the earlier vote
    comment: str | None
    result: Future = field(compare=False)


@dataclass(frozen=True)
class _Flush:
    done: threading.Event = field(compare=False)


_STOP = object()


# --- periods and question groups (pure) ------------------------------------------------------

_PERIOD = re.compile(r"^\s*(\d+)\s*([hdw]?)\s*$", re.IGNORECASE)
_PERIOD_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_period(text: str) -> timedelta:
    """ "30d", "12h", "2w" (a bare number is days) -> timedelta; ValueError otherwise."""
    match = _PERIOD.match(text or "")
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"invalid period {text!r}: use e.g. 30d, 12h or 2w")
    return int(match.group(1)) * _PERIOD_UNITS[(match.group(2) or "d").lower()]


def question_key(question: str) -> frozenset[str]:
    """A question as a set of folded syllables: case, accents and word order aside."""
    return frozenset(tokens(fold(question)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class QuestionGroup:
    example: str  # the most frequent wording
    count: int
    found: int
    key: frozenset[str]
    wordings: Counter


def group_questions(
    asked: Iterable[tuple[str, bool]], threshold: float = SAME_QUESTION_JACCARD
) -> list[QuestionGroup]:
    """Near-identical questions together, most asked first. ``asked`` holds (question,
    found) pairs, oldest first; the most frequent wordings choose the groups, greedily."""
    by_text: dict[str, list[int]] = {}
    for question, found in asked:
        counts = by_text.setdefault(" ".join(question.split()), [0, 0])
        counts[0] += 1
        counts[1] += int(found)
    # Stable: among wordings asked equally often, the first asked leads.
    ordered = sorted(by_text.items(), key=lambda item: -item[1][0])
    groups: list[QuestionGroup] = []
    for text, (count, found) in ordered[:MAX_GROUPED_QUESTIONS]:
        key = question_key(text)
        group = next((g for g in groups if jaccard(key, g.key) >= threshold), None)
        if group is None:
            groups.append(QuestionGroup(text, count, found, key, Counter({text: count})))
        else:
            group.count += count
            group.found += found
            group.wordings[text] += count
    for group in groups:
        group.example = group.wordings.most_common(1)[0][0]
    groups.sort(key=lambda g: (-g.count, g.example))
    return groups


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return round(
        sorted_values[min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1)], 1
    )


# --- the log ---------------------------------------------------------------------------------


class QuestionLog:
    """The log file and its writer thread. ``record`` never blocks and never raises."""

    def __init__(
        self,
        path: Path,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        queue_size: int = QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.clock = clock
        self.dropped = 0  # entries lost to a full queue
        self.failed = 0  # entries lost to a failed write
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._conn: sqlite3.Connection | None = None
        self._salt: bytes | None = None
        self._failing = False
        self._last_purge = -math.inf
        self._thread = threading.Thread(target=self._run, name="qabot-question-log", daemon=True)
        self._thread.start()

    # --- what callers do ------------------------------------------------------------------

    def record(self, entry: LoggedAnswer) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            log.warning("question log queue full: answer %s not logged", entry.answer_id)

    def feedback(
        self,
        answer_id: str,
        helpful: bool | None,
        comment: str | None = None,
        timeout: float = WRITE_TIMEOUT_SECONDS,
    ) -> bool:
        """Keep feedback with its question: True when stored, False for an unknown answer.
        ``helpful`` None adds a comment to the vote already given. Written by the writer
        thread after any answer still queued, so feedback on a fresh answer finds it."""
        comment = " ".join((comment or "").split())[:MAX_COMMENT_CHARS] or None
        result: Future = Future()
        try:
            self._queue.put(_Feedback(answer_id, helpful, comment, result), timeout=timeout)
            return result.result(timeout=timeout)
        except (queue.Full, FutureTimeout) as error:
            raise LogUnavailableError("the question log is busy") from error

    def flush(self, timeout: float = WRITE_TIMEOUT_SECONDS) -> bool:
        """Wait until what was queued before this call is written (or given up)."""
        done = threading.Event()
        try:
            self._queue.put(_Flush(done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = WRITE_TIMEOUT_SECONDS) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("question log: closing with a full queue; the rest is not written")
            return
        self._thread.join(timeout)

    def hash_user(self, raw: str) -> str:
        """The stored form of a user or chat id (needs the log open)."""
        if self._salt is None:
            raise LogUnavailableError("the question log is not open")
        return hmac.new(self._salt, raw.encode(), hashlib.sha256).hexdigest()[:24]

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        if self._connected():  # retention applies on start, then daily
            self._guard("purging old questions", self.purge)
        while True:
            try:
                item = self._queue.get(timeout=60)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if self._connected() and self.clock() - self._last_purge >= PURGE_EVERY_SECONDS:
                self._guard("purging old questions", self.purge)
            if isinstance(item, LoggedAnswer):
                self._write(item)
            elif isinstance(item, _Feedback):
                self._store_feedback(item)
            elif isinstance(item, _Flush):
                item.done.set()
        if self._conn is not None:
            self._conn.close()

    def _connected(self) -> bool:
        if self._conn is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=WRITE_TIMEOUT_SECONDS, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                self._salt = bytes.fromhex(_salt(conn))
            except BaseException:
                conn.close()
                raise
        except (OSError, sqlite3.Error) as error:
            self._fail(f"opening {self.path}", error)
            return False
        self._conn = conn
        return True

    def _fail(self, doing: str, error: Exception) -> None:
        # One line per failing streak: a read-only file would otherwise log every question.
        if not self._failing:
            log.error("question log: %s failed (%s); answers go out unlogged", doing, error)
        self._failing = True

    def _guard(self, doing: str, action: Callable[[], object]) -> bool:
        try:
            action()
        except sqlite3.Error as error:
            self._fail(doing, error)
            return False
        if self._failing:
            log.info("question log: writing works again")
        self._failing = False
        return True

    def _write(self, entry: LoggedAnswer) -> None:
        if not self._connected():
            self.failed += 1
            return
        assert self._conn is not None and self._salt is not None
        user_hash = self.hash_user(entry.user) if entry.user is not None else None
        row = (
            entry.answer_id,
            entry.at,
            entry.channel,
            entry.question,
            entry.interpreted_question,
            int(entry.found),
            entry.confidence,
            entry.took_ms,
            json.dumps([list(c) for c in entry.citations], ensure_ascii=False),
            user_hash,
        )
        conn = self._conn
        if self._guard(
            f"writing answer {entry.answer_id}",
            lambda: conn.execute(
                "INSERT OR REPLACE INTO questions (answer_id, at, channel, question, "
                "interpreted_question, found, confidence, took_ms, citations, user_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ),
        ):
            self.written += 1
        else:
            self.failed += 1

    def _store_feedback(self, item: _Feedback) -> None:
        if not self._connected():
            item.result.set_exception(LogUnavailableError("the question log cannot be opened"))
            return
        assert self._conn is not None
        try:
            if item.helpful is None:
                cursor = self._conn.execute(
                    "UPDATE questions SET comment = ?, feedback_at = ? WHERE answer_id = ?",
                    (item.comment, self.clock(), item.answer_id),
                )
            else:
                cursor = self._conn.execute(
                    "UPDATE questions SET helpful = ?, comment = ?, feedback_at = ? "
                    "WHERE answer_id = ?",
                    (int(item.helpful), item.comment, self.clock(), item.answer_id),
                )
        except sqlite3.Error as error:
            self._fail(f"storing feedback on {item.answer_id}", error)
            item.result.set_exception(LogUnavailableError(str(error)))
            return
        item.result.set_result(cursor.rowcount > 0)

    def purge(self) -> int:
        """Delete questions older than the retention period (writer thread only)."""
        assert self._conn is not None
        cutoff = self.clock() - self.retention_days * 86400
        deleted = self._conn.execute("DELETE FROM questions WHERE at < ?", (cutoff,)).rowcount
        self._last_purge = self.clock()
        if deleted:
            log.info(
                "question log: deleted %d questions older than %d days",
                deleted,
                self.retention_days,
            )
        return deleted

    # --- reading ---------------------------------------------------------------------------

    def _read(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise LogUnavailableError(f"no question log at {self.path}")
        try:
            # A separate connection: WAL lets it read while the writer writes.
            return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error as error:
            raise LogUnavailableError(str(error)) from error

    def rows(self, since: float | None = None) -> list[sqlite3.Row]:
        """Logged questions from ``since`` (Unix time) on, oldest first."""
        self.flush()
        conn = self._read()
        try:
            conn.row_factory = sqlite3.Row
            return conn.execute(
                "SELECT * FROM questions WHERE at >= ? ORDER BY at", (since or 0.0,)
            ).fetchall()
        except sqlite3.Error as error:
            raise LogUnavailableError(str(error)) from error
        finally:
            conn.close()

    def report(
        self,
        period: timedelta,
        documents: Sequence[tuple[str, str]] = (),
        now: float | None = None,
    ) -> dict:
        """What was asked in the last ``period``; ``documents`` are (doc_id, title) of the
        live index, so reports nobody cited are listed too."""
        until = self.clock() if now is None else now
        since = until - period.total_seconds()
        return summarize(self.rows(since), documents, since, until)


def _salt(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM settings WHERE key = 'salt'").fetchone()
    if row is not None:
        return row[0]
    conn.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES ('salt', ?)", (secrets.token_hex(16),)
    )
    return conn.execute("SELECT value FROM settings WHERE key = 'salt'").fetchone()[0]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def summarize(
    rows: Sequence[sqlite3.Row | dict],
    documents: Sequence[tuple[str, str]],
    since: float,
    until: float,
) -> dict:
    """The report of some logged questions (see README: "Question log")."""
    per_day: dict[str, Counter] = {}
    latencies = sorted(float(r["took_ms"]) for r in rows)
    cited: Counter = Counter()
    wrong = []
    helpful = not_helpful = 0
    for row in rows:
        day = datetime.fromtimestamp(row["at"]).date().isoformat()
        per_day.setdefault(day, Counter())[row["channel"]] += 1
        citations = json.loads(row["citations"])
        if row["found"]:
            # A report counts once per answer, however many of its passages were cited.
            cited.update({doc_id for doc_id, _ in citations})
        if row["helpful"] == 1:
            helpful += 1
        elif row["helpful"] == 0:
            not_helpful += 1
            wrong.append(
                {
                    "answer_id": row["answer_id"],
                    "at": _iso(row["at"]),
                    "channel": row["channel"],
                    "question": row["question"],
                    "comment": row["comment"],
                    "citations": [{"doc_id": d, "paragraph": p} for d, p in citations],
                }
            )
    found = sum(1 for r in rows if r["found"])
    asked = group_questions((r["question"], bool(r["found"])) for r in rows)
    unanswered = group_questions((r["question"], False) for r in rows if not r["found"])
    titles = dict(documents)
    for doc_id in cited:
        titles.setdefault(doc_id, doc_id)  # cited before being removed from the index
    citation_counts = sorted(
        ({"doc_id": d, "title": t, "answers": cited.get(d, 0)} for d, t in titles.items()),
        key=lambda item: (-item["answers"], item["doc_id"]),
    )
    return {
        "since": _iso(since),
        "until": _iso(until),
        "questions": len(rows),
        "found": found,
        "found_rate": round(found / len(rows), 3) if rows else None,
        "latency_ms": {
            "median": round(statistics.median(latencies), 1) if latencies else None,
            "p95": _percentile(latencies, 0.95),
        },
        "per_day": [
            {"date": day, "total": sum(counts.values()), "channels": dict(sorted(counts.items()))}
            for day, counts in sorted(per_day.items())
        ],
        "feedback": {"helpful": helpful, "wrong": not_helpful},
        "most_asked": [
            {"question": g.example, "count": g.count, "found": g.found} for g in asked[:REPORT_ROWS]
        ],
        "unanswered": [
            {"question": g.example, "count": g.count, "wordings": len(g.wordings)}
            for g in unanswered[: REPORT_ROWS * 3]
        ],
        "wrong_answers": wrong[-REPORT_ROWS * 3 :][::-1],
        "most_cited": citation_counts[:REPORT_ROWS],
        "least_cited": sorted(citation_counts, key=lambda item: (item["answers"], item["doc_id"]))[
            :REPORT_ROWS
        ],
    }


def default_log_path(index_dir: Path) -> Path:
    """Beside the index folder: embeddings/ -> embeddings-questions.sqlite."""
    index_dir = Path(index_dir)
    return index_dir.with_name(f"{index_dir.name}-questions.sqlite")


def open_log(setting: str | None, index_dir: Path, retention_days: int) -> QuestionLog | None:
    """The log QABOT_LOG_DB asks for: a path, empty for the default, "off" for none."""
    value = (setting or "").strip()
    if value.lower() in ("off", "none", "false", "0", "no"):
        return None
    path = Path(value) if value else default_log_path(index_dir)
    return QuestionLog(path, retention_days=retention_days)
