"""The reports of an index version as people browse them: newest first, found by the words
of their title, file name or date typed with or without diacritics, a page at a time.

A province's decade of reports is tens of thousands of files: a chat message, an admin
table or an API response shows a page of them, and the words typed narrow the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.index.meta import DocumentInfo
from qabot.text import fold

DOCUMENTS_PAGE = 20  # reports on a page when the caller does not say
MAX_DOCUMENTS_PAGE = 500  # the most one page may hold
MAX_FILTER_CHARS = 200  # a longer filter is cut: titles are shorter than this

# Words of a folded title or query: runs of letters and digits ("2024-03-05" gives three).
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class DocumentPage:
    """One page of the reports matching ``query`` (all of them for an empty query)."""

    documents: tuple[DocumentInfo, ...]
    total: int  # reports matching the query, on every page
    offset: int  # position of the first report of this page among them
    limit: int | None  # the most a page holds (None: every report from the offset)
    query: str  # the filter as given, spaces collapsed

    @property
    def next_offset(self) -> int | None:
        """Where the next page starts, or None on the last page."""
        end = self.offset + len(self.documents)
        return end if end < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """Where the page before this one starts, or None on the first page."""
        if self.offset <= 0:
            return None
        return max(0, self.offset - self.limit) if self.limit is not None else 0


def newest_first(documents: Sequence[DocumentInfo]) -> list[DocumentInfo]:
    """Dated reports newest first (then by title), undated ones after them by title."""
    dated = sorted((d for d in documents if d.date), key=lambda d: (d.date, d.title), reverse=True)
    undated = sorted((d for d in documents if not d.date), key=lambda d: (d.title, d.doc_id))
    return dated + undated


def query_words(query: str) -> list[str]:
    """The folded words a filter asks for ("Hải Phòng 2024" -> hai, phong, 2024)."""
    return _WORD.findall(fold(query[:MAX_FILTER_CHARS]))


def _search_text(document: DocumentInfo) -> str:
    # Each word preceded by a space, so " " + word finds words that start with it.
    text = f"{document.title} {document.source} {document.doc_id} {document.date or ''}"
    return " " + " ".join(_WORD.findall(fold(text)))


class Catalogue:
    """The reports of one index version in browsing order, with their folded words."""

    def __init__(self, documents: Sequence[DocumentInfo]) -> None:
        self._documents = tuple(newest_first(documents))
        self._texts = tuple(_search_text(d) for d in self._documents)

    @property
    def documents(self) -> tuple[DocumentInfo, ...]:
        return self._documents

    def page(
        self, query: str = "", offset: int = 0, limit: int | None = DOCUMENTS_PAGE
    ) -> DocumentPage:
        """Reports whose title, file name or date has a word starting with each word of
        ``query`` (typed with or without diacritics), from ``offset``, at most ``limit``
        (None: all of them)."""
        offset = max(0, offset)
        if limit is not None:
            limit = min(max(1, limit), MAX_DOCUMENTS_PAGE)
        words = [" " + w for w in query_words(query)]
        if words:
            matching = [
                d
                for d, text in zip(self._documents, self._texts, strict=True)
                if all(w in text for w in words)
            ]
        else:
            matching = list(self._documents)
        return DocumentPage(
            tuple(matching[offset : None if limit is None else offset + limit]),
            len(matching),
            offset,
            limit,
            " ".join(query.split())[:MAX_FILTER_CHARS],
        )
