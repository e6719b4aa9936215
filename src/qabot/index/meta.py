"""Passage, paragraph and document metadata of one index version, in SQLite."""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qabot.ingest import BODY, Document
from qabot.passages import Passage
from qabot.subject import document_subject

SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, source TEXT NOT NULL,
    content_hash TEXT NOT NULL, paragraphs INTEGER NOT NULL, passages INTEGER NOT NULL,
    subject TEXT NOT NULL DEFAULT ''
);
CREATE TABLE paragraphs (
    doc_id TEXT NOT NULL, number INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (doc_id, number)
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    paragraph INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL, header TEXT NOT NULL
);
CREATE INDEX passages_by_doc ON passages (doc_id, ordinal);
"""


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    date: str | None
    source: str
    content_hash: str
    paragraphs: int
    passages: int
    subject: str = ""  # qabot.subject.Subject.text: names the whole document is about


@dataclass(frozen=True)
class ParagraphRecord:
    doc_id: str
    number: int
    kind: str
    text: str


@dataclass
class DocumentRows:
    """Everything one document contributes to a version, ready to be copied forward."""

    info: DocumentInfo
    paragraphs: list[ParagraphRecord]
    passages: list[Passage]

    @classmethod
    def from_document(cls, document: Document, passages: list[Passage]) -> DocumentRows:
        info = DocumentInfo(
            doc_id=document.doc_id,
            title=document.title,
            date=document.date,
            source=document.source,
            content_hash=document.content_hash,
            paragraphs=len(document.paragraphs),
            passages=len(passages),
            subject=document_subject(
                document.title, [p.text for p in document.paragraphs if p.kind == BODY]
            ).text,
        )
        paragraphs = [
            ParagraphRecord(document.doc_id, p.number, p.kind, p.text) for p in document.paragraphs
        ]
        return cls(info, paragraphs, passages)


def connect(path: Path, *, read_only: bool = True) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return sqlite3.connect(path)


def write(path: Path, documents: list[DocumentRows]) -> None:
    writer = MetaWriter(path)
    try:
        for doc in documents:
            writer.add(doc)
    finally:
        writer.close()


class MetaWriter:
    """A new version's metadata, written document by document and committed in batches
    (about COMMIT_ROWS passages), so a build holds one document's rows at a time."""

    COMMIT_ROWS = 20_000

    def __init__(self, path: Path) -> None:
        self._db = connect(path, read_only=False)
        self._db.executescript(SCHEMA)
        self.rows = 0
        self._pending = 0

    def add(self, doc: DocumentRows) -> None:
        i = doc.info
        db = self._db
        db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                i.doc_id,
                i.title,
                i.date,
                i.source,
                i.content_hash,
                i.paragraphs,
                i.passages,
                i.subject,
            ),
        )
        db.executemany(
            "INSERT INTO paragraphs VALUES (?, ?, ?, ?)",
            [(p.doc_id, p.number, p.kind, p.text) for p in doc.paragraphs],
        )
        db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    self.rows + k,
                    p.doc_id,
                    p.ordinal,
                    p.paragraph,
                    p.start,
                    p.end,
                    p.kind,
                    p.text,
                    p.header,
                )
                for k, p in enumerate(doc.passages)
            ],
        )
        self.rows += len(doc.passages)
        self._pending += len(doc.passages) + 1
        if self._pending >= self.COMMIT_ROWS:
            db.commit()
            self._pending = 0

    def close(self) -> None:
        try:
            self._db.commit()
        finally:
            self._db.close()


def _document_columns(db: sqlite3.Connection) -> str:
    """The DocumentInfo columns; a version written before subjects existed has none."""
    names = {r[1] for r in db.execute("PRAGMA table_info(documents)")}
    subject = "subject" if "subject" in names else "''"
    return f"doc_id, title, date, source, content_hash, paragraphs, passages, {subject}"


def read_documents(db: sqlite3.Connection) -> list[DocumentInfo]:
    rows = db.execute(
        f"SELECT {_document_columns(db)} FROM documents ORDER BY date IS NULL, date, doc_id"
    )
    return [DocumentInfo(*r) for r in rows]


# Documents of a segment's metadata file by its stat stamp: a published segment never
# changes, and a build, an upload and a reload read the documents of every segment, 15,000
# rows at a million passages, several times each (0.6 s an upload).
_DOCUMENTS_KEPT = 16
_documents: OrderedDict[tuple, list[DocumentInfo]] = OrderedDict()
_documents_lock = threading.Lock()


def segment_documents(path: Path) -> list[DocumentInfo]:
    """read_documents of the metadata file at ``path`` (a segment's meta.sqlite)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _documents_lock:
        found = _documents.get(key)
        if found is not None:
            _documents.move_to_end(key)
            return list(found)
    db = connect(path)
    try:
        found = read_documents(db)
    finally:
        db.close()
    with _documents_lock:
        _documents[key] = found
        while len(_documents) > _DOCUMENTS_KEPT:
            _documents.popitem(last=False)
    return list(found)


def read_passages(db: sqlite3.Connection) -> list[Passage]:
    rows = db.execute(
        "SELECT doc_id, ordinal, paragraph, start, end, kind, text, header"
        " FROM passages ORDER BY row"
    )
    return [Passage(*r) for r in rows]


def read_document_rows(db: sqlite3.Connection, doc_id: str) -> DocumentRows:
    info = DocumentInfo(
        *db.execute(
            f"SELECT {_document_columns(db)} FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
    )
    paragraphs = [
        ParagraphRecord(*r)
        for r in db.execute(
            "SELECT doc_id, number, kind, text FROM paragraphs WHERE doc_id = ? ORDER BY number",
            (doc_id,),
        )
    ]
    passages = [
        Passage(*r)
        for r in db.execute(
            "SELECT doc_id, ordinal, paragraph, start, end, kind, text, header FROM passages"
            " WHERE doc_id = ? ORDER BY ordinal",
            (doc_id,),
        )
    ]
    return DocumentRows(info, paragraphs, passages)


def read_paragraphs(
    db: sqlite3.Connection, doc_id: str, first: int, last: int
) -> list[ParagraphRecord]:
    rows = db.execute(
        "SELECT doc_id, number, kind, text FROM paragraphs"
        " WHERE doc_id = ? AND number BETWEEN ? AND ? ORDER BY number",
        (doc_id, first, last),
    )
    return [ParagraphRecord(*r) for r in rows]


PASSAGE_COLUMNS = "doc_id, ordinal, paragraph, start, end, kind, text, header"


def row_number(row: object, count: int) -> int:
    """``row`` as a row of a sequence of ``count`` passages (negative: from the end);
    IndexError outside it."""
    number = int(row)  # type: ignore[call-overload]
    if number < 0:
        number += count
    if not 0 <= number < count:
        raise IndexError(f"passage row {number} out of range")
    return number


class PassageStore(Sequence[Passage]):
    """A version's passages by row, read from its SQLite file on demand: start-up and memory
    do not grow with the text of the corpus. The ``cache_size`` most recently read passages
    are kept (candidates and answers read the same few passages several times a query)."""

    def __init__(self, path: Path, cache_size: int = 4096) -> None:
        self._path = path
        self._db = connect(path)
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Passage] = OrderedDict()
        self.cache_size = cache_size
        (last,) = self._db.execute("SELECT max(row) FROM passages").fetchone()
        self._count = 0 if last is None else last + 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._count))]
        row = row_number(row, self._count)
        with self._lock:
            passage = self._cache.get(row)
            if passage is not None:
                self._cache.move_to_end(row)
                return passage
            found = self._db.execute(
                f"SELECT {PASSAGE_COLUMNS} FROM passages WHERE row = ?", (row,)
            ).fetchone()
            if found is None:
                raise IndexError(f"passage row {row} missing")
            passage = Passage(*found)
            self._cache[row] = passage
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return passage

    def many(self, rows: Sequence[int]) -> list[Passage]:
        """The passages at ``rows`` (in that order), the ones not kept read in one query: a
        question's candidates are mostly new on a large corpus, and a query per row cost
        twice as much."""
        rows = [row_number(r, self._count) for r in rows]
        with self._lock:
            kept = {r: self._cache[r] for r in rows if r in self._cache}
            missing = list(dict.fromkeys(r for r in rows if r not in kept))
            if missing:
                found = self._db.execute(
                    f"SELECT row, {PASSAGE_COLUMNS} FROM passages WHERE row IN "
                    f"({','.join('?' * len(missing))})",
                    missing,
                ).fetchall()
                if len(found) != len(missing):
                    raise IndexError(f"passage rows missing among {missing}")
                for row, *values in found:
                    kept[row] = self._cache[row] = Passage(*values)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            for r in kept:
                if r in self._cache:
                    self._cache.move_to_end(r)
        return [kept[r] for r in rows]

    def __iter__(self) -> Iterator[Passage]:
        """Every passage in row order, streamed (not cached)."""
        db = connect(self._path)
        try:
            for found in db.execute(f"SELECT {PASSAGE_COLUMNS} FROM passages ORDER BY row"):
                yield Passage(*found)
        finally:
            db.close()

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            return read_documents(self._db)

    def cached(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._db.close()
