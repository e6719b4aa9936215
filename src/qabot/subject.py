"""A report's subject: what every passage of it is about without saying so.

A report names its organisation and place in the title and lead, sometimes defines its own
short form ("Đảng ủy Ban Quản lý các Khu Chế xuất và Công nghiệp Thành phố (Đảng ủy Ban
Quản lý)"), and later passages say only "Đảng bộ" or "Đảng ủy Khối". The subject collects
those names once per document, at index build, so ranking can credit a passage with the
names its report gives it.

General Vietnamese writing conventions only (proper names are capitalised, a parenthesis
after a name may define its short form); nothing about any particular report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.text import sentence_spans, token_matches

LEAD_CHARS = 400  # the lead: the first body sentences up to about this length
NAMES = 6  # the names a report uses most
MIN_MENTIONS = 2
# Lower-case syllables a name may hold between capitalised ones ("Đảng ủy Khối doanh nghiệp
# thành phố Hải Phòng"): organisation names mix both.
MAX_LOWER_GAP = 2
MAX_SHORT_WORDS = 8
LONG_FORM_CHARS = 200
TRAILING_WORDS = 2
# A name takes its longest lower-case tail that most of its mentions share.
TAIL_SHARE = 0.6


@dataclass(frozen=True)
class Subject:
    title: str
    lead: str
    names: tuple[str, ...]  # the names it mentions most, most frequent first
    short_forms: tuple[tuple[str, str], ...]  # (short form, the full name it stands for)

    @property
    def text(self) -> str:
        """One text with every part, as stored with the index version."""
        parts = [self.title, self.lead, "; ".join(self.names)]
        parts += [f"{short} = {full}" for short, full in self.short_forms]
        return "\n".join(p for p in parts if p)


def _capitalised(word: str) -> bool:
    return word[0].isupper() and not word.isdigit()


def name_phrases(text: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """Proper names: runs of capitalised words, with at most MAX_LOWER_GAP lower-case words
    between two capitalised ones, unbroken by punctuation, of at least two words. Each is
    (start, end of its last capitalised word, ends of the next lower-case words): a name's
    last syllables are often lower case ("Ban Quản lý", "Khu kinh tế"), which the counts of
    document_subject decide."""
    spans: list[tuple[int, int, tuple[int, ...]]] = []
    run: list[re.Match[str]] = []  # the run so far, ending with a capitalised word
    gap: list[re.Match[str]] = []  # lower-case words after it
    previous_end = None

    def close() -> None:
        if len(run) >= 2:
            tail = tuple(m.end() for m in gap[:TRAILING_WORDS])
            spans.append((run[0].start(), run[-1].end(), tail))

    for m in token_matches(text):
        word = m.group()
        joined = previous_end is not None and not text[previous_end : m.start()].strip()
        previous_end = m.end()
        if run and not joined:
            close()
            run, gap = [], []
        if word[0].isdigit():
            close()
            run, gap = [], []
        elif _capitalised(word):
            run += [*gap, m]
            gap = []
        elif run:
            gap.append(m)
            if len(gap) > MAX_LOWER_GAP:
                close()
                run, gap = [], []
    close()
    return spans


def _lead(paragraphs: Sequence[str]) -> str:
    for paragraph in paragraphs:
        spans = sentence_spans(paragraph)
        if not spans:
            continue
        end = spans[0][1]
        for _, e in spans[1:]:
            if e > LEAD_CHARS:
                break
            end = e
        return paragraph[:end].strip()
    return ""


_PARENTHESIS = re.compile(r"\(([^()\d]{2,80})\)")
_CLAUSE_BREAK = re.compile(r"[.;:!?\n()]")


def short_forms(text: str) -> list[tuple[str, str]]:
    """("Đảng ủy Ban Quản lý", "Đảng ủy Ban Quản lý các Khu Chế xuất và Công nghiệp Thành
    phố") for a name followed by its short form in parentheses: the short form is
    capitalised, and the name is what follows the last use of the short form's first two
    words before the parenthesis, within the clause."""
    found: dict[str, str] = {}
    for m in _PARENTHESIS.finditer(text):
        short = " ".join(m.group(1).split())
        words = short.split()
        if not words or not _capitalised(words[0]) or len(words) > MAX_SHORT_WORDS:
            continue
        before = text[max(0, m.start() - LONG_FORM_CHARS) : m.start()]
        breaks = [b.end() for b in _CLAUSE_BREAK.finditer(before)]
        clause = before[breaks[-1] :] if breaks else before
        opening = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, words[:2])) + r"(?!\w)")
        starts = [o.start() for o in opening.finditer(clause)]
        if not starts:
            continue
        full = " ".join(clause[starts[-1] :].split())
        if full.lower() != short.lower() and len(full) > len(short):
            found.setdefault(short, full)
    return list(found.items())


def document_subject(title: str, paragraphs: Sequence[str]) -> Subject:
    """The subject of a document from its title and body paragraphs (captions left out)."""
    text = "\n".join(paragraphs)
    counts: Counter[str] = Counter()
    spelling: dict[str, Counter[str]] = {}
    tails: dict[str, Counter[str]] = {}
    for source in (title, text):
        for start, end, tail in name_phrases(source):
            name = " ".join(source[start:end].split())
            key = name.lower()
            counts[key] += 1
            spelling.setdefault(key, Counter())[name] += 1
            for tail_end in tail:
                tails.setdefault(key, Counter())[" ".join(source[end:tail_end].split())] += 1
    names = []
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0])):
        if n < MIN_MENTIONS or len(names) == NAMES:
            break
        shared = [t for t, k in tails.get(key, Counter()).items() if k >= TAIL_SHARE * n]
        tail = max(shared, key=len, default="")
        names.append(f"{spelling[key].most_common(1)[0][0]} {tail}".strip())
    return Subject(
        title=" ".join(title.split()),
        lead=_lead(paragraphs),
        names=tuple(names),
        short_forms=tuple(short_forms(f"{title}\n{text}")),
    )
