"""Question analysis: lexical terms, abbreviation variants and the expected answer type.

General Vietnamese question grammar and common administrative abbreviations only; no
knowledge of any particular report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.restore import Restorer
from qabot.terms import FOLDED_PREFIX, unit_terms
from qabot.text import fold, has_diacritics, tokens

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


def analyse(question: str, restorer: Restorer | None = None) -> Query:
    """The question's terms and answer type; with a restorer, those of the question with its
    diacritics restored."""
    interpreted = restorer.restore(question) if restorer is not None else question
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
