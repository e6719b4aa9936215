"""Best-effort publication dates from the header and lead of a report."""

from __future__ import annotations

import re
from datetime import date

# "1/18/23 5:48 PM": a US-style stamp, month first, recognisable by its AM/PM clock.
_US_STAMP = re.compile(
    r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\s+\d{1,2}:\d{2}(?::\d{2})?\s*([AaPp][Mm])\b"
)
# "11/7/2018", "14/06/2018", "29-3-2024", "2024-03-29": day first unless the year leads.
_NUMERIC = re.compile(r"(?<![\d/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?![\d/])")
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
# "ngày 12 tháng 6 năm 2018"
_WORDS = re.compile(r"(\d{1,2})\s+tháng\s+(\d{1,2})\s*(?:,\s*)?năm\s+(\d{4})", re.IGNORECASE)
# A line that is nothing but a date and/or clock: metadata, not body text.
_STAMP_LINE = re.compile(
    r"^\s*(?:\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?\s*[-–|,]?\s*)?"
    r"(?:(?:thứ\s+\w+|chủ\s+nhật)\s*,?\s*)?"
    r"\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}"
    r"(?:\s*[-–|,]?\s*\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm]|\(GMT[+-]\d+\))?)?\s*$",
    re.IGNORECASE,
)
# The same stamp at the start of a line that goes on with body text.
_LEADING_STAMP = re.compile(r"^\s*\d{1,2}:\d{2}\s*(?:[-–|,]\s*)?\d{1,2}/\d{1,2}/\d{4}\s+(?=\S)")


def _valid(year: int, month: int, day: int) -> str | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def find_date(text: str) -> str | None:
    """The first full date in ``text`` as ISO "YYYY-MM-DD", or None."""
    candidates: list[tuple[int, str]] = []
    for m in _US_STAMP.finditer(text):
        iso = _valid(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        if iso:
            candidates.append((m.start(), iso))
    us_spans = [m.span() for m in _US_STAMP.finditer(text)]
    for m in _NUMERIC.finditer(text):
        if any(s <= m.start() < e for s, e in us_spans):
            continue
        day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        iso = _valid(year, month, day) or _valid(year, day, month)
        if iso:
            candidates.append((m.start(), iso))
    for m in _ISO.finditer(text):
        iso = _valid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if iso:
            candidates.append((m.start(), iso))
    for m in _WORDS.finditer(text):
        iso = _valid(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        if iso:
            candidates.append((m.start(), iso))
    return min(candidates)[1] if candidates else None


def is_stamp_line(line: str) -> bool:
    """True for a line holding only a date or a date and time ("17:06 - 14/06/2018")."""
    return bool(_STAMP_LINE.match(line))


def split_leading_stamp(line: str) -> tuple[str, str]:
    """("11:29 05/11/2021", "Chiều 3-11, ...") for a line that opens with a time stamp."""
    m = _LEADING_STAMP.match(line)
    if not m:
        return "", line
    return line[: m.end()].strip(), line[m.end() :]
