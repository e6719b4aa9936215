"""Generate cloze questions by rule from a folder of reports, as training and held-out data.

    python bench/generate_questions.py [--docs DIR] [--out FILE] [--fold] [--folds K]
                                       [--seed N] [--per-unit N]

UIT cannot teach what a report's structure says (captions, dates, several reports on one
subject), so questions are made from the reports themselves. The reports are read through
qabot's own pipeline (qabot.ingest.load_document, qabot.passages.split_document), so every
gold string is a substring of a passage the index holds. From each sentence unit of each
passage (photo captions included), rules turn one fact into a question:

- number: "… đã kết nạp 175 đảng viên mới" -> "… đã kết nạp bao nhiêu đảng viên mới?"
  (a number followed by what it counts or measures; dates, years, list numbers and codes
  such as "12-NQ/TW" are not numbers asked for);
- person: "Đồng chí X - Phó Bí thư … phát biểu" -> "Ai là Phó Bí thư … phát biểu?", and
  "… do đồng chí X, …" -> "… do đồng chí nào, …?";
- date: "Ngày 12/3/2024, … tổ chức hội nghị" -> "… tổ chức hội nghị vào ngày nào?";
- period: "… nhiệm kỳ 2016 - 2020 …", "(1994 – 2003)" -> "… trong giai đoạn nào?".

The question is the clause that holds the fact, with the fact replaced. When the clause
does not say whose report or which time it is about, the report's subject (the
organisation its title and lead name, "Đảng ủy …", "Đảng bộ …") and period (a period in
the title, or the year of the report's date) are added, so that the question is answerable
against several reports and subject and time features can be learned from it.

Output: JSON lines in the eval protocol's format plus provenance,
``{"id", "q", "gold": [clause], "answer": [fact], "doc_id", "kind", "source_kind",
"passage", "subject_added", "time_added", "fold"?}``; ``--fold`` also writes a copy with
every question folded (qabot.text.fold), named ``<out stem>.folded.jsonl``. ``--folds K``
adds each question's report fold (see ``assign_folds``): hold whole reports out, never
single questions, because questions from one report share its sentences.

Deterministic: the same folder, rules and --seed give the same file. The rules hold only
general Vietnamese (question words, titles of office, units of count), nothing about any
particular report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

from qabot.ingest import CAPTION, Document, IngestError, discover, load_document
from qabot.passages import split_document
from qabot.text import fold, match_key, sentence_spans

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = ROOT / "data" / "reports"
DEFAULT_OUT = Path("/tmp/qabot-fit/generated.jsonl")
NUMBER, PERSON, ROLE, DATE, PERIOD = "number", "person", "role", "date", "period"
MAX_CLAUSE_CHARS = 130  # a longer clause is narrowed to the comma-parts around the fact
MIN_CLAUSE_WORDS = 4  # a question needs something to ask about besides the fact


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- general Vietnamese -----------------------------------------------------------------

_UPPER = "A-ZĐÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴ"
_CAP_WORD = rf"[{_UPPER}][^\W\d_]*"
# Common family names: a run of capitalised syllables opening with one is a person's name.
SURNAMES = word_set(
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Mai Đào Chu "
    "Đinh Lâm Trịnh Trương Cao Tô Hà Lương Đoàn Tạ Vương Kiều Thái Lưu Tăng Quách Châu Phùng "
    "La Lại Mạc Nông Âu Doãn Khúc Triệu Hứa Diệp Nghiêm Khổng Lục Bạch Đàm Lã Mã Tống"
)
# Titles of office: a name next to one of these is asked for with "Ai là <title …>?".
ROLE_HEADS = (
    "Phó Bí thư", "Bí thư", "Phó Chủ tịch", "Chủ tịch", "Phó Trưởng ban", "Trưởng ban",
    "Phó trưởng đoàn", "Trưởng đoàn", "Phó Giám đốc", "Giám đốc", "Phó Tổng Giám đốc",
    "Tổng Giám đốc", "Ủy viên", "Uỷ viên", "Tỉnh ủy viên", "Thành ủy viên", "Thường trực",
    "Trưởng phòng", "Phó Trưởng phòng", "Chánh Văn phòng", "Phó Chánh Văn phòng",
    "Bộ trưởng", "Thứ trưởng", "Đại biểu", "Hiệu trưởng", "Phó Hiệu trưởng", "Trưởng Ban",
    "Phó Trưởng Ban", "Phó trưởng ban", "Thủ tướng", "Phó Thủ tướng", "Tổng Bí thư",
)  # fmt: skip
_ROLE = re.compile(
    r"(?:" + "|".join(sorted((re.escape(r) for r in ROLE_HEADS), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
# Words after a number that say it is not a count ("3 tháng đầu năm" is a period).
_NOT_UNITS = word_set("tháng năm ngày giờ phút giây quý lần-thứ giai nhiệm đến và hoặc - – / đợt")
ORGANISATION_HEADS = ("Đảng ủy", "Đảng uỷ", "Đảng bộ", "Chi bộ", "Ban Quản lý", "Ban quản lý")
# Lower-case words that belong inside an organisation's name ("Đảng ủy các Khu Chế xuất
# và Công nghiệp …", "Đảng bộ Khu kinh tế …", "Đảng ủy Khối doanh nghiệp thành phố …").
ORGANISATION_WORDS = word_set(
    "các và khu kinh tế chế xuất công nghiệp khối doanh cơ quan thành phố tỉnh huyện quận "
    "ban quản lý tổng hợp dân chính đảng"
)
_TITLE_PERIOD = re.compile(
    r"\b(\d{1,2} tháng (?:đầu|cuối) năm(?: \d{4})?|(?:giữa )?nhiệm kỳ \d{4}\s*[-–]\s*\d{4}"
    r"|quý [IV\d]+(?:/| năm )\d{4}|năm \d{4})",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")

# --- facts in a clause --------------------------------------------------------------------

_DAY_PART = r"(?:(?:[Ss]áng|[Cc]hiều|[Tt]rưa|[Tt]ối|[Đđ]êm)\s+)?"
# A date with its lead word, longest first; group "what" says which question word fits.
_DATES = (
    (re.compile(_DAY_PART + r"(?:[Nn]gày\s+)?\d{1,2}[/-]\d{1,2}[/-](?:19|20)\d{2}\b"), "ngày"),
    (re.compile(r"\b\d{1,2} tháng \d{1,2} năm (?:19|20)\d{2}\b"), "ngày"),
    (re.compile(_DAY_PART + r"[Nn]gày\s+\d{1,2}[/-]\d{1,2}\b(?![/-]\d)"), "ngày"),
    (re.compile(r"(?:[Ss]áng|[Cc]hiều|[Tt]rưa|[Tt]ối)\s+\d{1,2}-\d{1,2}\b(?![/-]\d)"), "ngày"),
    (re.compile(r"\b[Tt]háng\s+\d{1,2}[/-](?:19|20)\d{2}\b"), "tháng"),
    (
        re.compile(
            r"(?<!tháng đầu )(?<!tháng cuối )(?<!cùng kỳ )"
            r"\b[Nn]ăm\s+(?:19|20)\d{2}\b(?!\s*[-–]\s*(?:19|20)\d{2})"
        ),
        "năm",
    ),
)
_PERIODS = (
    re.compile(r"\b(?:giữa\s+)?nhiệm kỳ\s+(?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}\b", re.I),
    re.compile(r"\bgiai đoạn\s+(?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}\b", re.I),
    re.compile(r"\((?:19|20)\d{2}\s*[-–]\s*(?:19|20)\d{2}\)"),
    re.compile(r"\b\d{1,2} tháng (?:đầu|cuối) năm (?:19|20)\d{2}\b"),
)
# A number: "175", "1.062", "5,4", "96/190", "85%"; not part of a code or date.
_NUMBER = re.compile(r"(?<![\w/.,-])(\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?(?:/\d+)?)(\s*%)?(?![\w/-])")
_WORD = re.compile(r"[^\W\d_]+")
# "Phần 2", "Điều 5", "số 12", "Nghị quyết 28", "Chỉ thị 05": labels, not quantities.
_LABEL_WORDS = word_set("phần điều khoản số mục lần quyết thị luận định khóa khoá chương")
_NAME = re.compile(rf"{_CAP_WORD}(?:\s+{_CAP_WORD}){{1,3}}")


@dataclass(frozen=True)
class Fact:
    kind: str
    start: int  # offsets in the clause
    end: int
    answer: str
    question: str


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _finish(question: str) -> str:
    question = re.sub(r"\s+", " ", question).strip(" ,;:-–.")
    question = re.sub(r"\s+([,;:.?])", r"\1", question)
    question = re.sub(r"\(\s*\)", "", question).strip()
    return question[:1].upper() + question[1:] + "?"


def _date_spans(clause: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for pattern, _ in _DATES:
        for m in pattern.finditer(clause):
            spans.append(m.span())
    for pattern in _PERIODS:
        spans.extend(m.span() for m in pattern.finditer(clause))
    return spans


def number_facts(clause: str) -> Iterator[Fact]:
    """Numbers followed by what they count: "175 đảng viên" -> "bao nhiêu đảng viên"."""
    dates = _date_spans(clause)
    for m in _NUMBER.finditer(clause):
        if any(s <= m.start() < e for s, e in dates):
            continue
        value, percent = m.group(1), m.group(2)
        if _YEAR.fullmatch(value) and not percent:
            continue
        before = clause[: m.start()].rstrip()
        previous = _words(before)[-1:] if before else []
        if previous and previous[0].lower() in _LABEL_WORDS:
            continue
        if not before or before.endswith(("(", "[")):
            continue  # a list number or a bracketed note
        after = clause[m.end() :]
        if percent:
            question = clause[: m.start()] + "bao nhiêu phần trăm" + after
        else:
            following = _words(after[:30])
            if not following or not after.startswith(" ") or not following[0][0].islower():
                continue
            if following[0].lower() in _NOT_UNITS:
                continue
            question = clause[: m.start()] + "bao nhiêu" + after
        yield Fact(NUMBER, m.start(), m.end(), m.group(0).strip(), question)


def _name_at(clause: str, start: int) -> re.Match[str] | None:
    m = _NAME.match(clause, start)
    if not m or m.group(0).split()[0] not in SURNAMES:
        return None
    # A name ends before a title of office ("Trần Lưu Quang Phó …" is not one name).
    for i, word in enumerate(re.finditer(r"\S+", m.group(0))):
        if i >= 2 and _ROLE.match(clause, m.start() + word.start()):
            return _NAME.match(clause[: m.start() + word.start()].rstrip(), start)
    return m


def person_facts(clause: str) -> Iterator[Fact]:
    """A person's name next to a title of office, or after "đồng chí"."""
    seen: set[int] = set()
    for m in re.finditer(rf"(?<![^\W\d_]){_CAP_WORD}", clause):
        if m.start() in seen:
            continue
        name = _name_at(clause, m.start())
        if name is None:
            continue
        seen.update(range(name.start(), name.end()))
        before, after = clause[: name.start()], clause[name.end() :]
        lead = re.search(r"(?:[Đđ]ồng chí|[Ôô]ng|[Bb]à)\s*$", before)
        tail = re.match(r"\s*(?:[-–,]\s*)?", after)
        role_after = _ROLE.match(after, tail.end()) if tail else None
        role_before = re.search(r"((?:" + _ROLE.pattern + r")[^,;()]*?)\s*$", before, re.IGNORECASE)
        answer = name.group(0)
        if role_after and (lead is None or lead.start() < 3 or not before[: lead.start()].strip()):
            # "Đồng chí X - Phó Bí thư … phát biểu" -> "Ai là Phó Bí thư … phát biểu?"
            rest = after[role_after.start() :]
            yield Fact(PERSON, name.start(), name.end(), answer, "Ai là " + rest)
            start = name.end() + role_after.start()
            yield Fact(
                ROLE,
                start,
                start + len(role_after.group(0)),
                role_after.group(0),
                f"Đồng chí {answer} giữ chức vụ gì",
            )
        elif role_before and not before[: role_before.start()].strip(" -–,.:"):
            # "Bí thư Thành ủy X phát biểu …" -> "Ai là Bí thư Thành ủy phát biểu …?"
            yield Fact(PERSON, name.start(), name.end(), answer, "Ai là " + before + after)
        elif lead is not None:
            # "… do đồng chí X, Tỉnh ủy viên … làm trưởng đoàn" -> "… do đồng chí nào, …"
            yield Fact(
                PERSON, name.start(), name.end(), answer, before + "nào" + after.rstrip(" .")
            )


def date_facts(clause: str) -> Iterator[Fact]:
    """A date or a period: the clause without it, asked "vào ngày nào?" or "khi nào?"."""
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, int, str]] = []
    for pattern, unit in _DATES:
        for m in pattern.finditer(clause):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            taken.append(m.span())
            found.append((m.start(), m.end(), unit))
    for pattern in _PERIODS:
        for m in pattern.finditer(clause):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            taken.append(m.span())
            found.append((m.start(), m.end(), PERIOD))
    for start, end, unit in sorted(found):
        inner = clause[:start].rstrip()
        if inner.endswith("(") and clause[end:].lstrip().startswith(")"):
            start, end = len(inner) - 1, clause.index(")", end) + 1
        elif clause.rfind("(", 0, start) > clause.rfind(")", 0, start):
            continue  # a date inside a longer note in parentheses
        before = clause[:start].rstrip()
        after = clause[end:].strip()
        # Lead words that only introduce the date go with it.
        lead = re.search(r"(?:\b(?:[Vv]ào|[Tt]ừ|[Đđ]ến|[Tt]rong|[Tt]ại|[Tt]hời điểm))\s*$", before)
        prep = lead.group(0).strip().lower() if lead else ""
        if lead:
            before = before[: lead.start()].rstrip()
        if unit == PERIOD:
            ask = "trong giai đoạn nào"
        elif prep in {"từ", "đến"}:
            ask = f"{prep} khi nào"
        else:
            ask = f"vào {unit} nào"
        answer = clause[start:end].strip("() ")
        if not before.strip(" ,"):
            question = after.lstrip(" ,") + " " + ask
        elif len(_words(before)) >= MIN_CLAUSE_WORDS:
            # The part before the date says what happened; what follows often is another fact.
            rest = after if len(_words(after)) <= 6 else ""
            question = before.rstrip(" ,") + " " + ask + (" " + rest if rest else "")
        else:
            question = before.rstrip(" ,") + " " + ask + " " + after
        kind = PERIOD if unit == PERIOD else DATE
        yield Fact(kind, start, end, answer, question)


# --- clauses, subject, time ----------------------------------------------------------------


def _strip_marker(text: str, start: int, end: int) -> tuple[int, int]:
    m = re.match(r"\s*(?:[-+•*–]|\(?\d{1,2}[.)]|\(?[a-zđ][.)]|[IVX]{1,4}\.)\s*", text[start:end])
    if m:
        start += m.end()
    while start < end and text[start] in " ,;:":
        start += 1
    while end > start and text[end - 1] in " ,;:.":
        end -= 1
    return start, end


def clauses(text: str) -> Iterator[tuple[int, int]]:
    """Clause spans of ``text``: sentences split at ";" and at line breaks."""
    for s, e in sentence_spans(text):
        bounds = [s]
        bounds += [s + m.end() for m in re.finditer(r";\s+|\n+", text[s:e])]
        bounds.append(e)
        for a, b in pairwise(bounds):
            a, b = _strip_marker(text, a, b)
            if b - a > 0:
                yield a, b


def narrow(text: str, start: int, end: int, fact_start: int, fact_end: int) -> tuple[int, int]:
    """The comma-parts of a long clause around a fact, at most about MAX_CLAUSE_CHARS."""
    if end - start <= MAX_CLAUSE_CHARS:
        return start, end
    cuts = [start] + [start + m.end() for m in re.finditer(r",\s+", text[start:end])] + [end]
    parts = list(pairwise(cuts))
    at = next(i for i, (a, b) in enumerate(parts) if a <= fact_start < b)
    lo = hi = at
    while True:
        grown = False
        if lo > 0 and parts[hi][1] - parts[lo - 1][0] <= MAX_CLAUSE_CHARS:
            lo -= 1
            grown = True
        if hi + 1 < len(parts) and parts[hi + 1][1] - parts[lo][0] <= MAX_CLAUSE_CHARS:
            hi += 1
            grown = True
        if not grown:
            break
    return _strip_marker(text, parts[lo][0], max(parts[hi][1], fact_end))


def _organisations(text: str) -> Iterator[str]:
    """Organisation names: a head ("Đảng ủy", "Đảng bộ", …) and the capitalised words and
    organisation words after it ("các Khu Chế xuất và Công nghiệp Cần Thơ")."""
    for line in text.splitlines():
        yield from _organisations_in_line(re.findall(r"\S+", line))


def _organisations_in_line(tokens: list[str]) -> Iterator[str]:
    i = 0
    while i < len(tokens):
        head = _head_at(tokens, i)
        if head == 0:
            i += 1
            continue
        j, last = i + head, None
        while j < len(tokens) and not tokens[j].startswith(("Đảng", "Chi")):
            word = tokens[j]
            bare = word.strip(',.;:()“”"…?!')
            if not bare or not word.startswith(bare):
                break
            following = tokens[j + 1] if j + 1 < len(tokens) else ""
            if bare in SURNAMES and following[:1].isupper():
                break  # a person's name after the organisation: "… thành phố Đỗ Quang Khoa"
            if bare[0].isupper() or bare.lower() in ORGANISATION_WORDS:
                if bare.lower() not in {"các", "và"}:
                    last = j
            else:
                break
            j += 1
            if bare != word:  # punctuation after it ends the name
                break
        if last is not None and last - i >= head + 1:
            yield " ".join(t.strip(',.;:()“”"…?!') for t in tokens[i : last + 1])
            i = last + 1
        else:
            i += 1


def _head_at(tokens: list[str], i: int) -> int:
    """How many words an organisation head at ``tokens[i]`` has (0: none)."""
    for head in ORGANISATION_HEADS:
        words = head.split()
        if [t.strip(',.;:()“”"') for t in tokens[i : i + len(words)]] == words:
            return len(words)
    return 0


def report_subject(document: Document) -> str | None:
    """The organisation the report is about: the full name its title and lead use most."""
    lead = " ".join(p.text for p in document.paragraphs[:3])
    counts: Counter[str] = Counter()
    for name in _organisations(document.title):
        counts[name] += 3
    for name in _organisations(lead):
        counts[name] += 2
    for name in _organisations(document.text):
        counts[name] += 1
    # A name the title or lead gives, or one the text repeats.
    named = {n: c for n, c in counts.items() if c >= 2}
    if not named:
        return None
    # A longer name counts the mentions of its shorter forms ("Đảng ủy Khu kinh tế").
    scored = {
        n: c + sum(v for m, v in named.items() if m != n and n.startswith(m))
        for n, c in named.items()
    }
    return max(sorted(scored), key=lambda n: (scored[n], len(n)))


def report_period(document: Document) -> str | None:
    """The report's period: one its title names, or the year of its date."""
    m = _TITLE_PERIOD.search(document.title)
    if m:
        period = m.group(1)
        if not _YEAR.search(period):
            year = _YEAR.search(document.title) or (
                _YEAR.search(document.date) if document.date else None
            )
            period = f"{period} {year.group(0)}" if year else period
        return period
    return f"năm {document.date[:4]}" if document.date else None


# Words after "Đảng ủy" / "Đảng bộ" that show it stands alone for the report's own one.
_AFTER_GENERIC = word_set(
    "đã đang sẽ có được luôn tổ chỉ thực kết lãnh tập triển phối tiếp đề xác hiện cũng vẫn "
    "đạt hoàn giao ban quan"
)


def _time_prefix(period: str) -> str:
    if period.startswith(("năm", "giữa", "quý")):
        return period[:1].upper() + period[1:]
    return f"Trong {period}"


def with_context(
    question: str, kind: str, subject: str | None, period: str | None
) -> tuple[str, bool, bool]:
    """The question with the report's subject and period where it lacks them: a short form
    of the subject is expanded in place, a bare "Đảng ủy" named; otherwise both go in
    parentheses at the end, the way the conversation step writes inherited context."""
    subject_added = time_added = False
    missing: list[str] = []
    if subject and match_key(subject) not in match_key(question):
        key = match_key(subject)
        shorts = sorted(set(_organisations(question)), key=len, reverse=True)
        short = next((n for n in shorts if key.startswith(match_key(n))), None)
        generic = None
        for m in re.finditer(r"(?<![^\W\d_])(?:Đảng ủy|Đảng uỷ|Đảng bộ)(?![^\W\d_])", question):
            after = _words(question[m.end() : m.end() + 20])
            if not after or after[0] in _AFTER_GENERIC:
                generic = m
                break
        if short is not None:
            question = question.replace(short, subject, 1)
        elif generic is not None:
            question = question[: generic.start()] + subject + question[generic.end() :]
        else:
            missing.append(subject)
        subject_added = True
    wants_time = period and kind not in (DATE, PERIOD) and not _YEAR.search(question)
    if wants_time:
        time_added = True
        if missing:
            missing.append(period)
        elif question.startswith("Ai là "):
            question = f"{question.rstrip('?')} {period}?"
        else:
            words = question.split()
            proper = question.startswith(ORGANISATION_HEADS) or (
                len(words) > 1 and words[1][:1].isupper()
            )
            first = question if proper else question[:1].lower() + question[1:]
            question = f"{_time_prefix(period)}, {first}"
    if missing:
        question = f"{question.rstrip('?')} ({'; '.join(missing)})?"
    return question, subject_added, time_added


# --- the whole folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    id: str
    q: str
    gold: list[str]
    answer: list[str]
    doc_id: str
    kind: str
    source_kind: str
    passage: int  # the passage's ordinal in its document
    subject_added: bool
    time_added: bool


def _question_ok(question: str, answer: str) -> bool:
    words = _words(question)
    if len(words) < MIN_CLAUSE_WORDS + 2:
        return False
    return match_key(answer) not in match_key(question)


def generate_document(document: Document) -> list[Generated]:
    subject, period = report_subject(document), report_period(document)
    found: list[Generated] = []
    for passage in split_document(document):
        for c_start, c_end in clauses(passage.text):
            clause_text = passage.text[c_start:c_end]
            facts = [*number_facts(clause_text), *person_facts(clause_text)]
            facts += date_facts(clause_text)
            for fact in facts:
                s, e = narrow(
                    passage.text, c_start, c_end, c_start + fact.start, c_start + fact.end
                )
                if (s, e) != (c_start, c_end):
                    # Re-derive the fact in the narrowed clause, so the question is short.
                    narrowed = passage.text[s:e]
                    offset = c_start + fact.start - s
                    again = [
                        f
                        for f in (
                            *number_facts(narrowed),
                            *person_facts(narrowed),
                            *date_facts(narrowed),
                        )
                        if f.kind == fact.kind and f.start == offset
                    ]
                    if not again:
                        continue
                    fact, gold = again[0], narrowed
                else:
                    gold = clause_text
                bare = _finish(fact.question)
                if not _question_ok(bare, fact.answer):
                    continue
                # The question with the report's context, and as the sentence alone asks it.
                variants = {(bare, False, False)}
                variants.add(with_context(bare, fact.kind, subject, period))
                for question, subject_added, time_added in sorted(variants, reverse=True):
                    if not _question_ok(question, fact.answer):
                        continue
                    digest = hashlib.sha1(f"{document.doc_id}\n{question}".encode()).hexdigest()
                    found.append(
                        Generated(
                            id=f"g-{digest[:10]}",
                            q=question,
                            gold=[gold],
                            answer=[fact.answer],
                            doc_id=document.doc_id,
                            kind=fact.kind,
                            source_kind="caption" if passage.kind == CAPTION else "body",
                            passage=passage.ordinal,
                            subject_added=subject_added,
                            time_added=time_added,
                        )
                    )
    return found


def assign_folds(doc_ids: Iterable[str], k: int) -> dict[str, int]:
    """Each report's fold, 0..k-1: sorted ids dealt round robin, so folds differ in size by
    at most one report and a report keeps its fold while the folder does not change."""
    return {doc_id: i % k for i, doc_id in enumerate(sorted(set(doc_ids)))}


def load_generated(path: Path) -> list[dict]:
    """The questions of a generated file (for fitting scripts)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def generate(
    docs: Path, seed: int = 14, per_unit: int = 3
) -> tuple[list[Generated], list[Document]]:
    """Every report's questions, at most ``per_unit`` of one kind from one clause (a seeded
    choice), duplicates dropped, in the order of the reports and their text."""
    rng = random.Random(seed)
    documents: list[Document] = []
    for path in discover(docs):
        try:
            documents.append(load_document(path, docs))
        except IngestError as exc:
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    questions: list[Generated] = []
    seen: set[str] = set()
    for document in documents:
        groups: dict[tuple[str, str], list[Generated]] = {}
        for item in generate_document(document):
            groups.setdefault((item.gold[0], item.kind), []).append(item)
        for group in groups.values():
            chosen = group if len(group) <= per_unit else rng.sample(group, per_unit)
            for item in sorted(chosen, key=group.index):
                key = match_key(item.q)
                if key not in seen:
                    seen.add(key)
                    questions.append(item)
    return questions, documents


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--fold", action="store_true", help="also write a folded copy")
    parser.add_argument("--folds", type=int, default=0, help="add each report's fold (K)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--per-unit", type=int, default=3)
    args = parser.parse_args(argv)
    questions, documents = generate(args.docs, args.seed, args.per_unit)
    folds = assign_folds((d.doc_id for d in documents), args.folds) if args.folds else {}
    rows = []
    for item in questions:
        row = asdict(item)
        if folds:
            row["fold"] = folds[item.doc_id]
        rows.append(row)
    write_jsonl(args.out, rows)
    if args.fold:
        folded = [{**row, "q": fold(row["q"])} for row in rows]
        write_jsonl(args.out.with_name(args.out.stem + ".folded.jsonl"), folded)
    kinds = Counter(row["kind"] for row in rows)
    sources = Counter(row["source_kind"] for row in rows)
    per_doc = Counter(row["doc_id"] for row in rows)
    print(f"{len(rows)} questions -> {args.out}")
    print("kinds:", dict(sorted(kinds.items())), "sources:", dict(sorted(sources.items())))
    for doc_id, n in sorted(per_doc.items()):
        print(f"  {n:4d}  {doc_id}  fold {folds.get(doc_id, '-')}")


if __name__ == "__main__":
    main()
