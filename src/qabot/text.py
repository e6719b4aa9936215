"""Vietnamese text helpers: normalisation, accent folding, tokens and sentences.

Everything here is a pure function over strings so that ingestion, indexing, search and
answer extraction all see text the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from itertools import pairwise

# Characters that scraped pages use as spaces, or that are invisible but split words.
_SPACE_LIKE = dict.fromkeys(
    map(
        ord, "\u00a0\u2007\u202f\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u3000"
    ),
    " ",
)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), " ")

# Combining marks of the five Vietnamese tones (grave, acute, tilde, hook above, dot below).
_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
# "oa", "oe" and "uy" closing a syllable take the tone on their first vowel ("hòa", "khỏe",
# "thủy"); the newer style puts it on the second ("hoà", "khoẻ", "thuỷ"). Rewrite to the
# first so one word has one spelling. "qu" is a consonant, so "quý" is left alone.
_TONE_ON_SECOND = re.compile(rf"(?<![qQ])([oO])([aAeE])([{_TONE_MARKS}])(?![^\W\d_])")
_TONE_ON_Y = re.compile(rf"(?<![qQ])([uU])([yY])([{_TONE_MARKS}])(?![^\W\d_])")


def normalize(text: str) -> str:
    """NFC, one tone-mark placement, and plain spaces instead of NBSP and zero-width marks."""
    text = text.translate(_SPACE_LIKE).translate(_INVISIBLE)
    decomposed = unicodedata.normalize("NFD", text)
    decomposed = _TONE_ON_SECOND.sub(r"\1\3\2", decomposed)
    decomposed = _TONE_ON_Y.sub(r"\1\3\2", decomposed)
    return unicodedata.normalize("NFC", decomposed)


_MARKLESS_KEPT = 0x3000  # Latin (Vietnamese included), Greek, Cyrillic, combining marks...


class _MarklessTable(dict[int, str]):
    """Code point -> the character without its combining marks (NFD, marks dropped, NFC),
    filled on first sight: str.translate then folds a passage in one pass of C."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        bare = "".join(
            c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn"
        )
        bare = unicodedata.normalize("NFC", bare)
        if code < _MARKLESS_KEPT:  # bounded: text of any script cannot grow the table
            self[code] = bare
        return bare


_MARKLESS = _MarklessTable({ord("đ"): "d", ord("Đ"): "D"})


def strip_marks(text: str) -> str:
    """Diacritics removed, case kept (the evaluation protocol's fold of a question):
    "Cần Thơ" -> "Can Tho", "Đảng" -> "Dang"."""
    # Character by character equals decomposing the whole text; the NFC pass recomposes
    # what separate characters may form together (and is skipped for plain ASCII).
    stripped = text.translate(_MARKLESS)
    return stripped if stripped.isascii() else unicodedata.normalize("NFC", stripped)


def fold(text: str) -> str:
    """Lower case without diacritics: "Đảng viên" -> "dang vien"."""
    return strip_marks(text.lower())


def has_diacritics(text: str) -> bool:
    """True when the text carries any Vietnamese accent (or đ), i.e. it was typed with them."""
    return fold(text) != text.lower()


# A Vietnamese syllable, folded: an optional onset, one to three vowels, an optional coda.
# English words rarely fit ("what", "members", "did"); Vietnamese typed without accents does.
_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnprstvx])?[aeiouy]{1,3}(?:ng|nh|ch|[cmnpt])?"
)
_WORD = re.compile(r"[^\W\d_]+")


def could_be_syllable(word: str) -> bool:
    """True when a word, accent-folded, has the shape of a Vietnamese syllable."""
    return bool(_SYLLABLE.fullmatch(fold(word)))


def looks_vietnamese(text: str) -> bool:
    """False for a question in another language: no accented word, and most words cannot be
    Vietnamese syllables.

    Capitalised words (names, abbreviations: "FIFA", "Ronaldo", "KCN") are not counted.
    """
    words = [w for w in _WORD.findall(text) if w[0].islower()]
    if not words or any(has_diacritics(w) for w in words):
        return True
    syllables = sum(1 for w in words if could_be_syllable(w))
    return syllables > 0.5 * len(words)


# Not a letter or a digit: \w is exactly str.isalnum() plus the underscore.
_NOT_ALNUM = re.compile(r"[\W_]+")


def match_key(text: str) -> str:
    """The comparison form of the evaluation protocol: folded, letters and digits only."""
    return _NOT_ALNUM.sub("", fold(unicodedata.normalize("NFC", text)))


# A number keeps its thousands and decimal separators as one token ("1.062", "19.309",
# "5,4"); words are runs of letters and digits.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+")


def _token_form(raw: str) -> str:
    if raw[0].isdigit():
        digits = raw.replace(".", "").replace(",", "")
        # "04" and "4" are the same count; keep a single zero.
        return digits.lstrip("0") or "0"
    return raw.lower()


def token_matches(text: str) -> Iterator[re.Match[str]]:
    """The tokens of ``tokens`` with their positions in ``text``, as typed."""
    return _TOKEN.finditer(text)


def tokens(text: str) -> list[str]:
    """Lower-case syllables and numbers, in order."""
    return [_token_form(t) if t[0].isdigit() else t.lower() for t in _TOKEN.findall(text)]


# --- sentences -----------------------------------------------------------------------------

# Abbreviations that end with a period inside a sentence. Titles and units, not content.
_ABBREVIATIONS = frozenset(
    {
        "ths", "ts", "pgs", "gs", "bs", "ks", "cn", "ls", "nxb", "tp", "tt", "q", "p", "tx",
        "st", "mr", "mrs", "ms", "dr", "vs", "no", "tr", "th", "đ", "v.v", "vv", "ct", "cty",
        "hđqt", "tgđ", "gđ", "pgđ", "ubnd",
    }
)  # fmt: skip
_SENTENCE_END = re.compile(r"(\./\.|\.{3}|…|[.!?])([\"”’)\]]*)(?=\s)")
_OPENERS = '"“‘([–—-'


def _next_sentence_start(text: str, end: int) -> int | None:
    """Offset of the next sentence when one plausibly starts after ``end``, else None."""
    start = end
    while start < len(text) and text[start].isspace():
        start += 1
    if start == end or start >= len(text):
        return None
    first = text[start]
    if first in _OPENERS or first.isdigit() or first.isupper():
        return start
    return None


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    return text[start:end]


_BLOCK_BREAK = re.compile(r"\n\s*\n")
# "1.", "2.1.", "IV.", "a." opening a line number a list item; they end no sentence.
_ENUMERATOR = re.compile(r"(?:\d+(?:\.\d+)*|[IVXLCivxlc]+|[a-zđ])")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence boundaries as (start, end) offsets into ``text``, whitespace trimmed.

    Paragraph breaks (blank lines) always end a sentence. Otherwise a sentence ends at ".",
    "!", "?", "…", "..." or "./." followed by white space and an upper-case letter, a digit
    or an opening quote. Periods inside tokens ("TP.HCM", "1.062") never qualify, and
    neither do known abbreviations ("ThS."), initials, or list numbers opening a line.
    """
    spans: list[tuple[int, int]] = []
    block_start = 0
    for brk in [*_BLOCK_BREAK.finditer(text), None]:
        block_end = brk.start() if brk else len(text)
        spans.extend(_block_sentences(text, block_start, block_end))
        block_start = brk.end() if brk else block_end
    return spans


def _block_sentences(text: str, block_start: int, block_end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = block_start
    for match in _SENTENCE_END.finditer(text, block_start, block_end):
        end = match.end()
        following = _next_sentence_start(text[:block_end], end)
        if following is None:
            continue
        if match.group(1) == ".":
            word = _word_before(text, match.start())
            line_start = text.rfind("\n", 0, match.start()) + 1
            opens_line = not text[max(line_start, block_start) : match.start() - len(word)].strip()
            if (
                word.lower() in _ABBREVIATIONS
                or (len(word) == 1 and word.isalpha())
                or (opens_line and _ENUMERATOR.fullmatch(word))
            ):
                continue
        spans.append((start, end))
        start = following
    spans.append((start, block_end))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_units(text: str, max_chars: int = 300) -> list[tuple[int, int]]:
    """Sentence spans, with a sentence longer than ``max_chars`` split into its clauses at
    ";" (reports list many facts in one sentence; a short answer is one of them)."""
    units: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        if end - start <= max_chars:
            units.append((start, end))
            continue
        bounds = [start, *(start + m.end() for m in re.finditer(r";\s+", text[start:end])), end]
        units.extend(_trim(text, a, b) for a, b in pairwise(bounds) if text[a:b].strip())
    return units


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def ends_sentence(line: str) -> bool:
    """True when a line ends like a finished sentence or a lead-in to a list."""
    return bool(re.search(r"[.!?…:;][\"”’)\]]*\s*$", line))


def introduces(text: str) -> bool:
    """True when a sentence or paragraph ends with a colon: it introduces what follows
    ("… bao gồm 3 phần:"), a list that belongs with it."""
    return text.rstrip().endswith(":")


_ITEM_BULLET = re.compile(r"\s*([-+•*–])\s")
_ITEM_NUMBER = re.compile(r"\s*\(?(?:(\d{1,2})|([IVX]{1,4})|([a-zđ]))([.)])\s", re.IGNORECASE)
_NAMED_ITEM_NUMBER = re.compile(r"\s*(\w+)\s+\d{1,2}\s*[:.)]")


def list_marker(text: str) -> str | None:
    """The shape of the marker a list item starts with ("-", "1.", "a)", "Phần 2:"), or None.

    Items of one list share a shape, so the first unit without it is where the list ends.
    """
    if match := _ITEM_BULLET.match(text):
        return match.group(1)
    if match := _ITEM_NUMBER.match(text):
        number, roman, _, closing = match.groups()
        kind = "number" if number else "roman" if roman else "letter"
        return kind + closing
    if match := _NAMED_ITEM_NUMBER.match(text):
        return match.group(1).lower() + " N"
    return None


def list_owners(units: list[str]) -> list[int | None]:
    """For each unit of a passage, the index of the heading unit whose list it belongs to.

    A unit that introduces (ends with a colon) starts a list that runs to the next heading;
    when the first item starts with a marker, the list also ends at the first unit that
    does not share the marker's shape, so the text after a list is not read as part of it.
    """
    owners: list[int | None] = []
    heading: int | None = None
    shape: str | None = None
    for i, unit in enumerate(units):
        if heading is not None:
            if i == heading + 1:
                shape = list_marker(unit)
            elif shape is not None and list_marker(unit) != shape:
                heading = None
        owners.append(heading)
        if introduces(unit):
            heading, shape = i, None
    return owners
