"""Answer focus: what kind of thing a question asks for, and next to which of its words.

"Đảng bộ … có bao nhiêu đảng viên?" asks for a number next to "đảng viên"; "Ai là Phó Bí
thư …?" for a person's name next to "phó bí thư"; "… được thành lập vào ngày nào?" for a
date next to "thành lập". A sentence that holds a number somewhere answers the first less
well than one that holds "1.062 đảng viên". Pure functions of text, for the answer-sentence
model (qabot.answer) and for any ranking feature that wants them.

General Vietnamese only: question words, function words, common family names and the
shapes of dates and numbers; nothing about any particular report.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qabot.query import DATE, NUMBER, ORGANISATION, PERSON, PLACE, answer_type
from qabot.text import fold, token_matches

# How many content words on the question word's side make its focus, how far (in words)
# from them the asked thing may be, and how fast nearness decays (exp(-gap / FOCUS_DECAY)).
FOCUS_WORDS = 3
FOCUS_WINDOW = 8
FOCUS_DECAY = 3.0


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Question words by the kind they ask for, longest first within a kind (folded forms are
# matched against folded questions).
_CUES = (
    (DATE, ("khi nào", "lúc nào", "ngày nào", "năm nào", "tháng nào", "bao giờ",
            "thời gian nào", "thời điểm nào", "buổi nào", "dịp nào")),
    (NUMBER, ("là bao nhiêu", "bao nhiêu", "mấy")),
    (PERSON, ("ai là", "là ai", "những ai", "người nào", "đồng chí nào", "ai")),
    (PLACE, ("ở đâu", "tại đâu", "nơi nào", "địa điểm nào", "đâu")),
    (ORGANISATION, ("cơ quan nào", "đơn vị nào", "tổ chức nào", "ban nào")),
)  # fmt: skip
# Words that carry no focus of their own: the focus of "được thành lập vào ngày nào" is
# "thành lập", of "có bao nhiêu đảng viên" "đảng viên".
FUNCTION_WORDS = _word_set(
    "là có được của các những và vào trong tại ở cho với đã đang sẽ thì mà này đó nào "
    "gì bị từ đến một hay hoặc không chưa bao nhiêu mấy ai khi đâu nơi lúc hiện nay "
    "tổng số cả tất theo về ra lên thế như sao vậy ạ nhỉ"
)
# Folded, some function words look like content words ("bi" is "bị" and "bí thư", "co"
# "có" and "cơ quan"): those stay content.
_FOLDED_FUNCTION_WORDS = frozenset(fold(w) for w in FUNCTION_WORDS) - {
    "bi", "tu", "do", "ma", "co", "ve", "the", "nhu", "o", "da", "se", "cho", "ra", "len", "dang",
}  # fmt: skip
# Common family names: a run of capitalised syllables opening with one is a person's name.
SURNAMES = _word_set(
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Mai Đào Chu "
    "Đinh Lâm Trịnh Trương Cao Tô Hà Lương Đoàn Tạ Vương Kiều Thái Lưu Tăng Quách Châu "
    "Phùng La Lại Mạc Nông Âu Doãn Khúc Triệu Hứa Diệp Nghiêm Khổng Lục Bạch Đàm Lã Mã Tống"
)
_HONORIFICS = frozenset({"đồng chí", "ông", "bà", "anh", "chị"})

# Dates and years: "12/3/2024", "3-11", "tháng 6/2023", "năm 2023", "2016".
DATE_PATTERN = re.compile(
    r"\b\d{1,2}[/-]\d{1,2}(?:[/-]\d{2,4})?\b"
    r"|\b(?:ngày|tháng|năm|quý)\s+\d{1,4}(?:[/-]\d{1,4}){0,2}"
    r"|\b(?:19|20)\d{2}\b",
    re.IGNORECASE,
)
_BREAK = re.compile(r"[,;:?!.()\[\]“”\"–]|\s-\s")
_CAPITALISED = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Focus:
    kind: str | None  # the asked kind (qabot.query's NUMBER, DATE, …) or None
    words: tuple[str, ...]  # lower-case (folded when the question is) focus syllables


# A token: (as written, its form: lower case, folded when comparing folded text, start, end,
# whether punctuation parts it from the token before). A plain tuple of strings, ints and a
# bool: sentences are tokenised by the thousand per question (a frozen dataclass cost three
# times as much to make), and _tokens keeps thousands of sentences' tokens, which the cyclic
# garbage collector stops tracking only when they are exact tuples (a NamedTuple stays
# tracked: 350,000 of them made each full collection of a serving process take 250 ms).
_Token = tuple[str, str, int, int, bool]
TEXT, FORM, START, END, BROKEN = range(5)  # the fields of a _Token


def _form(token: str, folded: bool) -> str:
    return fold(token).lower() if folded else token.lower()


# Sentences of the passages found come back with every question about them: tokenising them
# again was a fifth of the time spent choosing the answer sentence.
@functools.lru_cache(maxsize=8192)
def _tokens(text: str, folded: bool) -> tuple[_Token, ...]:
    # The whole text lowered (and folded) at once, its tokens' forms sliced from it: a
    # third less time a sentence typed without diacritics. Lowering or folding rarely
    # changes a text's length ("İ"); then each token is lowered on its own.
    forms = fold(text) if folded else text.lower()
    aligned = len(forms) == len(text)
    found: list[_Token] = []
    previous_end = 0
    for m in token_matches(text):
        start, end = m.span()
        raw = text[start:end]
        form = forms[start:end] if aligned else _form(raw, folded)
        # Most tokens are parted by one space, which breaks nothing.
        spaced = start == previous_end + 1 and text[previous_end] == " "
        broken = bool(found) and not spaced and bool(_BREAK.search(text, previous_end, start))
        found.append((raw, form, start, end, broken))
        previous_end = end
    return tuple(found)


def _cue_at(words: list[str], kind: str, folded: bool) -> tuple[int, int] | None:
    """The token span of the first question word of ``kind`` in ``words``."""
    for _, cues in (c for c in _CUES if c[0] == kind):
        for cue in cues:
            parts = (fold(cue) if folded else cue).split()
            n = len(parts)
            for i in range(len(words) - n + 1):
                if words[i : i + n] == parts:
                    return i, i + n
    return None


def _content(token: _Token, folded: bool) -> bool:
    words = _FOLDED_FUNCTION_WORDS if folded else FUNCTION_WORDS
    return token[FORM] not in words and not token[FORM][0].isdigit()


# Ranking reads a question's focus for each batch of candidates it reads, and the answer
# once more: the same few questions at a time.
@functools.lru_cache(maxsize=1024)
def question_focus(question: str, folded: bool = False, kind: str | None = None) -> Focus:
    """The asked kind and the content words next to the question word: those after it
    ("bao nhiêu [đảng viên]", "ai là [phó bí thư]"), or, when none follow, those before it
    ("[thành lập] vào ngày nào", "[trưởng ban] là ai"). ``kind`` defaults to
    qabot.query.answer_type of the question (pass the one of its restored form)."""
    kind = kind or answer_type(question)
    if kind is None:
        return Focus(None, ())
    tokens = _tokens(question, folded)
    span = _cue_at([t[FORM] for t in tokens], kind, folded)
    if span is None:
        return Focus(kind, ())
    start, end = span

    def gather(indices: range) -> list[str]:
        picked: list[str] = []
        previous: int | None = None
        for i in indices:
            # Punctuation between two words ends the phrase the question word is in.
            if previous is not None and tokens[max(i, previous)][BROKEN]:
                break
            previous = i
            if _content(tokens[i], folded):
                picked.append(tokens[i][FORM])
                if len(picked) == FOCUS_WORDS:
                    break
            elif picked:
                break
        return picked

    after = gather(range(end, len(tokens))) if end < len(tokens) else []
    if after and not tokens[end][BROKEN]:
        return Focus(kind, tuple(after))
    before = gather(range(start - 1, -1, -1)) if not tokens[start][BROKEN] else []
    return Focus(kind, tuple(reversed(before)))


def _names(tokens: Sequence[_Token]) -> Iterator[tuple[int, int]]:
    """Token spans of people's names: two to four capitalised syllables opening with a
    common family name, or following an honorific ("đồng chí", "ông")."""
    i = 0
    while i < len(tokens):
        j = i
        while (
            j < len(tokens)
            and j - i < 4
            and _CAPITALISED.match(tokens[j][TEXT])
            and tokens[j][TEXT][0].isupper()
            and (j == i or not tokens[j][BROKEN])
        ):
            j += 1
        if j - i >= 2:
            honoured = i > 0 and (
                tokens[i - 1][TEXT].lower() in _HONORIFICS
                or (i > 1 and f"{tokens[i - 2][TEXT]} {tokens[i - 1][TEXT]}".lower() in _HONORIFICS)
            )
            if tokens[i][TEXT] in SURNAMES or honoured:
                yield i, j
            i = j
        else:
            i += 1


def _capitalised_runs(tokens: Sequence[_Token]) -> Iterator[tuple[int, int]]:
    """Token spans of two or more capitalised words: names of places and organisations."""
    i = 0
    while i < len(tokens):
        j = i
        while (
            j < len(tokens) and tokens[j][TEXT][0].isupper() and (j == i or not tokens[j][BROKEN])
        ):
            j += 1
        if j - i >= 2:
            yield i, j
            i = j
        else:
            i += 1


def asked_things(kind: str | None, text: str, tokens: Sequence[_Token]) -> list[tuple[int, int]]:
    """Token spans in ``text`` of things of the asked kind."""
    if kind in (NUMBER, DATE):
        return _dated_things(kind, text, [t[START] for t in tokens])
    if kind == PERSON:
        return list(_names(tokens))
    if kind in (PLACE, ORGANISATION):
        return list(_capitalised_runs(tokens))
    return []


def _dated_things(kind: str, text: str, starts: Sequence[int]) -> list[tuple[int, int]]:
    """Token spans of dates (DATE) or of numbers outside dates (NUMBER), from where the
    tokens start."""
    # Per date, the tokens that start inside it: a contiguous range of them.
    dates = [
        (bisect.bisect_left(starts, s), bisect.bisect_left(starts, e))
        for s, e in (m.span() for m in DATE_PATTERN.finditer(text))
    ]
    if kind == DATE:
        return [(a, b) for a, b in dates if a < b]
    in_date = {i for a, b in dates for i in range(a, b)}
    return [(i, i + 1) for i, s in enumerate(starts) if text[s].isdigit() and i not in in_date]


# A sentence's things of one kind do not depend on the question: the candidates' sentences
# come back with every question about them, and finding dates and names in them was most of
# the focus feature's cost.
@functools.lru_cache(maxsize=8192)
def _things(kind: str, text: str, folded: bool) -> tuple[tuple[int, int], ...]:
    if kind in (NUMBER, DATE):
        if not _DIGIT.search(text):
            return ()  # numbers and dates are written with digits: no need to tokenise
        return tuple(_dated_things(kind, text, _layout(text, folded)[0]))
    return tuple(asked_things(kind, text, _tokens(text, folded)))


@functools.lru_cache(maxsize=8192)
def _layout(text: str, folded: bool) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Where the text's tokens start, and their forms: all that numbers, dates and runs of
    focus words need. Half of _tokens' cost (no token tuples, no punctuation between
    tokens), and most sentences a question reads are read for those."""
    forms = fold(text) if folded else text.lower()
    if len(forms) != len(text):  # forms are not sliced from a text of another length
        tokens = _tokens(text, folded)
        return tuple(t[START] for t in tokens), tuple(t[FORM] for t in tokens)
    spans = [m.span() for m in token_matches(text)]
    return tuple(s for s, _ in spans), tuple(forms[s:e] for s, e in spans)


def _forms(kind: str, text: str, folded: bool) -> tuple[str, ...]:
    """The forms of the text's tokens, from whichever tokenisation finding ``kind`` made."""
    if kind in (NUMBER, DATE):
        return _layout(text, folded)[1]
    return _token_forms(text, folded)


@functools.lru_cache(maxsize=8192)
def _token_forms(text: str, folded: bool) -> tuple[str, ...]:
    return tuple(t[FORM] for t in _tokens(text, folded))


def _runs(focus: tuple[str, ...], forms: Sequence[str]) -> list[tuple[int, int]]:
    """Token spans where the text (its tokens' forms) repeats focus words in the question's
    order, longest runs only (a run inside a longer one is left out)."""
    runs: list[tuple[int, int]] = []
    starts: dict[str, list[int]] = {}  # where each focus word stands in the question
    for j, word in enumerate(focus):
        starts.setdefault(word, []).append(j)
    for i, form in enumerate(forms):
        longest = 0
        for j in starts.get(form, ()):  # a run starts only at a focus word
            k = 1
            while i + k < len(forms) and j + k < len(focus) and forms[i + k] == focus[j + k]:
                k += 1
            longest = max(longest, k)
        if longest and not (runs and runs[-1][1] >= i + longest):
            runs.append((i, i + longest))
    return runs


def focus_match(focus: Focus, text: str, folded: bool = False) -> float:
    """How closely ``text`` puts a thing of the asked kind next to the focus words.

    For the best pair of a thing of the asked kind and a run of focus words (in the
    question's order): (run length / focus length)^2 * exp(-gap / FOCUS_DECAY), the gap
    being the words between them (0 when adjacent, at most FOCUS_WINDOW). A lone syllable
    of a longer focus ("đảng" of "đảng viên" in "Đảng bộ") is weak evidence, hence the
    square. 0.0 when the question asks for no kind or has no focus words."""
    if focus.kind is None or not focus.words:
        return 0.0
    things = _things(focus.kind, text, folded)
    if not things:
        return 0.0
    runs = _runs(focus.words, _forms(focus.kind, text, folded))
    best = 0.0
    for s, e in things:
        for a, b in runs:
            if a < e and s < b:
                continue  # the run is inside the thing ("Bí thư" in a name's span)
            gap = s - b if b <= s else a - e
            if gap < FOCUS_WINDOW:
                share = (b - a) / len(focus.words)
                best = max(best, share * share * math.exp(-gap / FOCUS_DECAY))
    return best


_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def years(text: str) -> frozenset[str]:
    """The years (1900-2099) that ``text`` names: "năm 2023", "tháng 6/2023", "2016 - 2020"."""
    return frozenset(_YEAR.findall(text))


def year_match(asked: frozenset[str], text: str) -> float:
    """1.0 when ``text`` names one of the ``asked`` years, -1.0 when it names only other
    years, 0.0 when it names none or no year is asked. "Năm 2023 … bao nhiêu tổ chức
    đảng?" wants the 2023 figure, not the 2024 target next to it."""
    if not asked:
        return 0.0
    named = years(text)
    if not named:
        return 0.0
    return 1.0 if named & asked else -1.0
