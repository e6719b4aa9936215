"""Question analysis: lexical terms, abbreviation variants and the expected answer type.

General Vietnamese question grammar and common administrative abbreviations only; no
knowledge of any particular report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.lexicon import word_zipf
from qabot.restore import Restorer
from qabot.terms import FOLDED_PREFIX, unit_terms
from qabot.text import could_be_syllable, fold, has_diacritics, token_matches, tokens

# Interrogatives and question particles: they say what is asked, not what to match.
QUESTION_PHRASES = (
    "như thế nào", "thế nào", "ra sao", "là gì", "là ai", "là bao nhiêu", "bao nhiêu",
    "bao lâu", "bao giờ", "khi nào", "lúc nào", "ngày nào", "năm nào", "tháng nào",
    "ở đâu", "tại đâu", "nơi nào", "vì sao", "tại sao", "làm sao", "hay không", "có phải",
    "được không", "phải không", "đúng không", "gồm những", "những gì", "những ai", "nào",
    "gì", "ai", "đâu", "mấy", "không", "chưa", "nhỉ", "vậy", "ạ",
)  # fmt: skip

NUMBER, DATE, PERSON, PLACE, ORGANISATION = "number", "date", "person", "place", "organisation"
_ANSWER_TYPES = (
    (DATE, ("khi nào", "lúc nào", "ngày nào", "năm nào", "tháng nào", "bao giờ", "thời gian nào",
            "thời điểm nào", "từ khi nào", "buổi nào", "dịp nào")),
    (NUMBER, ("bao nhiêu", "mấy", "số lượng", "tỷ lệ", "bao lâu")),
    (PERSON, ("là ai", "những ai", "ai là", "người nào", "đồng chí nào", "ai ")),
    (PLACE, ("ở đâu", "tại đâu", "nơi nào", "đâu", "địa điểm nào")),
    (ORGANISATION, ("cơ quan nào", "đơn vị nào", "tổ chức nào", "ban nào", "kênh nào")),
)  # fmt: skip

# Administrative abbreviations and their expansions, matched both ways.
ABBREVIATIONS = {
    "kcn": "khu công nghiệp",
    "kkt": "khu kinh tế",
    "kcx": "khu chế xuất",
    "tp": "thành phố",
    "tphcm": "thành phố hồ chí minh",
    "hcm": "hồ chí minh",
    "ubnd": "ủy ban nhân dân",
    "hđnd": "hội đồng nhân dân",
    "bch": "ban chấp hành",
    "btv": "ban thường vụ",
    "tncs": "thanh niên cộng sản",
    "ctr": "chương trình",
    "tu": "thành ủy",
    "tw": "trung ương",
    "nq": "nghị quyết",
    "qđ": "quyết định",
    "đcs": "đảng cộng sản",
    "mttq": "mặt trận tổ quốc",
    "ldld": "liên đoàn lao động",
    "lđlđ": "liên đoàn lao động",
    "ccb": "cựu chiến binh",
    "bql": "ban quản lý",
    "sxkd": "sản xuất kinh doanh",
    "cnvc": "công nhân viên chức",
    "nld": "người lao động",
    "nlđ": "người lao động",
    "dn": "doanh nghiệp",
    "ptth": "phổ thông trung học",
    "thpt": "trung học phổ thông",
    "đh": "đại học",
    "đhqg": "đại học quốc gia",
    "sv": "sinh viên",
    "gv": "giảng viên",
    "tc": "tín chỉ",
}
_EXPANSIONS = {tuple(tokens(v)): k for k, v in ABBREVIATIONS.items()}
_FOLDED_ABBREVIATIONS = {fold(k): fold(v) for k, v in ABBREVIATIONS.items()}
_FOLDED_EXPANSIONS = {tuple(tokens(v)): k for k, v in _FOLDED_ABBREVIATIONS.items()}


@dataclass(frozen=True)
class Query:
    text: str
    content: str  # the question without interrogatives
    folded: bool  # typed without diacritics: match accent-folded forms
    answer_type: str | None
    terms: tuple[str, ...]  # BM25 terms of the content words
    variant_terms: tuple[str, ...]  # from abbreviations, weighted lower
    content_tokens: tuple[str, ...]
    # The question as searched: its diacritics restored when it was typed without (some of)
    # them; the same as text otherwise. Terms, content and answer type come from it.
    interpreted: str = ""

    def __post_init__(self) -> None:
        if not self.interpreted:
            object.__setattr__(self, "interpreted", self.text)


# The work a question causes (restoring its diacritics, its BM25 terms, above all embedding
# it: the embedder's time grows with its length in tokens, 0.5-1 s for 1000 characters of
# filler) is bounded by the size of the text analysed, counted in units that approximate
# the embedder's tokens: a word shaped like a Vietnamese syllable, or a short number, is one
# unit; any other word one per character (random letters split into that many tokens); a
# punctuation mark or symbol one. Real questions are within these bounds: of the 1,225 UIT
# training questions 99% have at most 32 words and 135 characters, three are longer than
# 256 characters. A bounded question costs the embedder about 70 tokens at most (a typical
# question 15-40).
MAX_QUERY_UNITS = 64
MAX_QUERY_CHARS = 256
MAX_WORD_CHARS = 24  # a syllable has at most 7 letters; a longer "word" is noise or a code
_QUESTION_WORDS = frozenset(t for p in QUESTION_PHRASES for t in tokens(p))


def _units(word: str) -> int:
    """About how many embedder tokens a word costs."""
    if (word.isdigit() and len(word) <= 4) or could_be_syllable(word):
        return 1
    return len(word)


def _is_bounded(question: str, words: list[str]) -> bool:
    if len(question) > MAX_QUERY_CHARS or any(len(w) > MAX_WORD_CHARS for w in words):
        return False
    marks = sum(1 for c in question if not (c.isspace() or c.isalnum()))
    return marks + sum(_units(w) for w in words) <= MAX_QUERY_UNITS


def _keep_first(word: str) -> tuple[int, float]:
    """Which words a bounded question keeps first: question words (they say what is asked),
    then the rarer a word in general Vietnamese the sooner, as BM25's term weight (idf times
    this rarity prior) would rank it. A repeated word is kept once: it adds no new word
    term (only, perhaps, a bigram, which a question this long can spare)."""
    lowered = word.lower()
    rarity = word_zipf(lowered, folded=not has_diacritics(lowered))
    return (0 if lowered in _QUESTION_WORDS else 1, rarity)


def is_long_question(question: str) -> bool:
    """True when a question is beyond the bounds above (it is then searched as
    ``bound_question``): filler, pasted text, noise."""
    return not _is_bounded(question, [m.group() for m in token_matches(question)])


def bound_question(question: str) -> str:
    """The question as analysed and embedded: itself when it is within the bounds above,
    else its words alone (no punctuation), each word once and cut to MAX_WORD_CHARS, at most
    MAX_QUERY_UNITS and MAX_QUERY_CHARS of them, chosen by ``_keep_first`` and kept in the
    question's order."""
    words = [m.group() for m in token_matches(question)]
    if _is_bounded(question, words):
        return question
    first_forms: dict[str, str] = {}
    for word in words:
        first_forms.setdefault(word[:MAX_WORD_CHARS].lower(), word[:MAX_WORD_CHARS])
    distinct = list(first_forms.values())
    position = {w: i for i, w in enumerate(distinct)}
    chosen: set[str] = set()
    units = chars = 1  # the question mark
    for word in sorted(distinct, key=lambda w: (*_keep_first(w), position[w])):
        cost = _units(word)
        if units + cost <= MAX_QUERY_UNITS and chars + len(word) + 1 <= MAX_QUERY_CHARS:
            chosen.add(word)
            units, chars = units + cost, chars + len(word) + 1
    kept = " ".join(w for w in distinct if w in chosen)
    return kept + "?" if question.rstrip().endswith("?") and kept else kept


def with_context(question: str, context: Sequence[str]) -> str:
    """A follow-up's own words with the context it inherits in parentheses, as one
    self-contained question people read: "Phần 2 gồm những gì (Đảng ủy X; năm 2018)?"."""
    if not context:
        return question
    core = question.strip().rstrip("?.!…").strip()
    return f"{core} ({'; '.join(context)})?"


def strip_question_words(text: str, folded: bool = False) -> str:
    """The question without interrogatives. Typed without accents, one-syllable question
    words are kept: "dau" may as well be "đầu" as "đâu"."""
    lowered = f" {fold(text) if folded else text.lower()} "
    phrases = [fold(p) for p in QUESTION_PHRASES if " " in p] if folded else QUESTION_PHRASES
    for phrase in phrases:
        lowered = re.sub(rf"(?<![^\W\d_]){re.escape(phrase)}(?![^\W\d_])", " ", lowered)
    return " ".join(lowered.replace("?", " ").split())


def answer_type(text: str) -> str | None:
    lowered = f" {' '.join(tokens(text))} "
    for kind, cues in _ANSWER_TYPES:
        if any(f" {cue.strip()} " in lowered for cue in cues):
            return kind
    if lowered.strip().startswith("ai "):
        return PERSON
    return None


def _variants(syllables: list[str], folded: bool) -> list[list[str]]:
    """Expansions of abbreviations in the question, and abbreviations of spelled-out phrases."""
    abbreviations = _FOLDED_ABBREVIATIONS if folded else ABBREVIATIONS
    expansions = _FOLDED_EXPANSIONS if folded else _EXPANSIONS
    variants = []
    for s in syllables:
        if s in abbreviations:
            variants.append(tokens(abbreviations[s]))
    for phrase, abbreviation in expansions.items():
        n = len(phrase)
        if any(tuple(syllables[i : i + n]) == phrase for i in range(len(syllables) - n + 1)):
            variants.append([abbreviation])
    return variants


def interpret(question: str, restorer: Restorer | None = None) -> tuple[str, str]:
    """The question as analysed (``bound_question``) and as understood: with a restorer, with
    its diacritics restored. The dense side of a search needs only the latter, so it can
    start before the rest of the analysis (qabot.search)."""
    question = bound_question(question)
    return question, restorer.restore(question) if restorer is not None else question


def analyse(
    question: str, restorer: Restorer | None = None, interpreted: tuple[str, str] | None = None
) -> Query:
    """The question's terms and answer type; with a restorer, those of the question with its
    diacritics restored. A question beyond the bounds is analysed as ``bound_question``
    makes it. ``interpreted``: what ``interpret`` gave for the question, when the caller
    has it already."""
    question, interpreted = interpreted or interpret(question, restorer)
    folded = not has_diacritics(interpreted)
    content = strip_question_words(interpreted, folded) or interpreted.lower()
    syllables = tokens(content)
    if folded:

        def as_terms(parts: list[str]) -> list[str]:
            return [FOLDED_PREFIX + t for t in unit_terms(parts)]
    else:
        as_terms = unit_terms
    variant_terms = [t for v in _variants(syllables, folded) for t in as_terms(v)]
    if interpreted != question:
        # The folded terms of the letters typed, so a wrong restoration loses no match.
        typed = tokens(strip_question_words(question, folded=True) or fold(question))
        variant_terms += [FOLDED_PREFIX + t for t in unit_terms(typed)]
    return Query(
        text=question,
        interpreted=interpreted,
        content=content,
        folded=folded,
        answer_type=answer_type(interpreted),
        terms=tuple(dict.fromkeys(as_terms(syllables))),
        variant_terms=tuple(dict.fromkeys(variant_terms)),
        content_tokens=tuple(syllables),
    )
