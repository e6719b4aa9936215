"""Periods of time in questions and passages, as month ranges.

A period is a closed range of months counted from year 0 (``year * 12 + month - 1``), so
"năm 2023" is January to December 2023, "6 tháng đầu năm 2018" January to June 2018 and
"tháng 3/2024" March 2024 alone. A question also may ask about the present ("hiện nay",
"hiện có", "mới nhất"): then the latest report on its subject should answer it.

Everything here is general Vietnamese date grammar and works on text with or without
diacritics (it reads the accent-folded form).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from qabot.text import fold

Months = tuple[int, int]  # first and last month, inclusive

FIRST_YEAR, LAST_YEAR = 1900, 2100
# Bump when what text_periods reads changes: indexes store every passage's periods
# (qabot.index.passage_periods), and a segment read with another grammar is read again.
GRAMMAR_VERSION = 1

# Present-time cues, folded: "hiện nay", "hiện có", "hiện tại", "mới nhất", "gần đây nhất".
_NOW = re.compile(
    r"\b(?:hien nay|hien co|hien tai|hien dang|moi nhat|gan day nhat|gan nhat|bay gio)\b"
)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_YEAR = r"((?:19|20)\d\d)"
# "6 tháng đầu năm 2018", "9 tháng đầu năm", "6 tháng cuối năm 2018"
_PART_OF_YEAR = re.compile(rf"\b(\d{{1,2}}) thang (dau|cuoi) nam(?: {_YEAR})?\b")
# "quý 3 năm 2023", "quý III/2023"
_QUARTER = re.compile(rf"\bquy (\d|iv|iii|ii|i)\b(?: nam|/|-)? ?{_YEAR}?")
# "tháng 3/2024", "tháng 3 năm 2024", "tháng 03-2024"
_MONTH = re.compile(rf"\bthang (\d{{1,2}})(?: nam |/|-|\.){_YEAR}\b")
# "12/6/2018", "29-3-2024", "ngày 12 tháng 6 năm 2018"
_DATE = re.compile(rf"(?<![\d/.-])(\d{{1,2}})[/.-](\d{{1,2}})[/.-]{_YEAR}(?![\d/])")
_DATE_WORDS = re.compile(rf"\b(\d{{1,2}}) thang (\d{{1,2}}),? nam {_YEAR}\b")
# "2016 - 2020", "2016-2020", "giai đoạn 2021 – 2025", "từ 2010 đến 2023"
_YEAR_RANGE = re.compile(rf"(?<![\d/.]){_YEAR} ?(?:-|–|—|den) ?{_YEAR}(?![\d/])")
_BARE_YEAR = re.compile(rf"(?<![\d/.,]){_YEAR}(?![\d/.,]\d)")
_ANY_YEAR = re.compile(_YEAR)


@dataclass(frozen=True)
class QuestionTime:
    """What a question says about time: an explicit period, the present, or nothing."""

    period: Months | None  # the asked months; None when the question names none
    now: bool  # "hiện nay", "hiện có", "mới nhất"

    @property
    def unspecified(self) -> bool:
        return self.period is None


def month_number(year: int, month: int) -> int:
    return year * 12 + month - 1


def year_months(year: int) -> Months:
    return month_number(year, 1), month_number(year, 12)


def _text_form(text: str) -> str:
    return " ".join(fold(text).replace("\u2013", "–").split())


def _periods(text: str, default_year: int | None = None) -> list[tuple[int, int, Months]]:
    """(start offset, end offset, months) for every period the folded ``text`` names, the
    most specific first where they overlap."""
    found: list[tuple[int, int, Months]] = []

    def add(match: re.Match[str], months: Months) -> None:
        if any(s <= match.start() < e for s, e, _ in found):
            return  # inside a more specific mention already read ("tháng 3/2024")
        found.append((match.start(), match.end(), months))

    # Skip the patterns whose fixed parts the text lacks: most passages name no year, and
    # reading a passage's periods was the largest cost of a candidate seen the first time.
    dated = _ANY_YEAR.search(text) is not None
    months = "thang" in text
    for m in _DATE.finditer(text) if dated else ():
        day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if 1 <= month <= 12 and 1 <= day <= 31:
            add(m, (month_number(year, month),) * 2)
    for m in _DATE_WORDS.finditer(text) if dated and months else ():
        month, year = int(m.group(2)), int(m.group(3))
        if 1 <= month <= 12:
            add(m, (month_number(year, month),) * 2)
    for m in _PART_OF_YEAR.finditer(text) if months else ():
        count, which = int(m.group(1)), m.group(2)
        year = int(m.group(3)) if m.group(3) else default_year
        if year is None or not 1 <= count <= 12:
            continue
        if which == "dau":
            add(m, (month_number(year, 1), month_number(year, count)))
        else:
            add(m, (month_number(year, 13 - count), month_number(year, 12)))
    for m in _QUARTER.finditer(text) if "quy" in text else ():
        raw = m.group(1)
        quarter = int(raw) if raw.isdigit() else _ROMAN[raw]
        year = int(m.group(2)) if m.group(2) else default_year
        if year is None or not 1 <= quarter <= 4:
            continue
        add(m, (month_number(year, 3 * quarter - 2), month_number(year, 3 * quarter)))
    for m in _MONTH.finditer(text) if dated and months else ():
        month, year = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            add(m, (month_number(year, month),) * 2)
    for m in _YEAR_RANGE.finditer(text) if dated else ():
        first, last = int(m.group(1)), int(m.group(2))
        if first <= last:
            add(m, (year_months(first)[0], year_months(last)[1]))
    for m in _BARE_YEAR.finditer(text) if dated else ():
        add(m, year_months(int(m.group(1))))
    return sorted(found)


def question_time(question: str) -> QuestionTime:
    """The period a question asks about, and whether it asks about the present.

    Several periods ("từ năm 2018 đến năm 2020") are read as the range covering them all.
    """
    text = _text_form(question)
    periods = [months for _, _, months in _periods(text)]
    period = (min(p[0] for p in periods), max(p[1] for p in periods)) if periods else None
    return QuestionTime(period, bool(_NOW.search(text)))


def text_periods(text: str, default_year: int | None = None) -> tuple[Months, ...]:
    """Every period a passage names, in order. ``default_year`` completes mentions without
    a year ("9 tháng đầu năm"): the year of the report."""
    return tuple(months for _, _, months in _periods(_text_form(text), default_year))


def passage_periods(text: str, report_date: str | None) -> tuple[Months, ...]:
    """The periods a passage of a report dated ``report_date`` names; a period without its
    year ("9 tháng đầu năm") takes the year of the report."""
    month = report_month(report_date)
    return text_periods(text, month // 12 if month is not None else None)


@functools.lru_cache(maxsize=4096)  # asked for each candidate's report, question after question
def report_month(date: str | None) -> int | None:
    """The month of an ISO date ("2018-07-11"), or None when the report has no date."""
    if not date:
        return None
    m = re.match(r"(\d{4})-(\d{2})", date)
    return month_number(int(m.group(1)), int(m.group(2))) if m else None


def overlaps(a: Months, b: Months) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


# A report written on a period comes out during it or soon after ("sơ kết 6 tháng đầu năm"
# in July, a year's review in the next spring).
REPORT_LAG_MONTHS = 6


def report_covers(period: Months, month: int | None) -> bool:
    """True when a report dated ``month`` may be about ``period``."""
    return month is not None and period[0] <= month <= period[1] + REPORT_LAG_MONTHS
