"""From ranked passages to what a reader gets: a short extractive answer and citations."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from qabot.fitted import FittedModels, LinearModel
from qabot.focus import DATE_PATTERN, focus_match, question_focus, year_match, years
from qabot.index import LoadedIndex
from qabot.ingest import CAPTION
from qabot.query import DATE, NUMBER, ORGANISATION, PERSON, PLACE
from qabot.search import Hit, SearchResult
from qabot.terms import term_sets
from qabot.text import fold, introduces, list_owners, tokens

MAX_ANSWER_CHARS = 300  # one unit; a longer sentence is cut to its best clauses
# The answer is "the sentence or two that answer": the unit next to the best one joins it
# when its score is within COMPANION_MARGIN (a likelihood at least e^-2 of the best's) and
# the two fit in MAX_TWO_UNITS_CHARS. A next unit that does not fit is cut at a word to fit,
# unless less than MIN_COMPANION_CHARS of it would be left (UIT train answer@1: not cut
# 0.805, cut 0.807 at 80 characters, 0.808 at 40, 0.807 at 150).
# The margin was read off the UIT train curve (answer@1 / median length: off 0.767 / 170,
# 1 0.794 / 182, 2 0.804 / 204, 3 0.810 / 221, 5 0.824 / 271 characters): past 2 the gain
# is small and answers grow long.
COMPANION_MARGIN = 2.0
MAX_TWO_UNITS_CHARS = 400
MIN_COMPANION_CHARS = 80
SENTENCE_SOURCES = 3  # the short answer comes from one of the first passages

SENTENCE_FEATURES = (
    "dense",  # exp((cosine - best cosine among the sentences considered) / dense_scale)
    "coverage",  # idf share of the question's syllables in the sentence or the header
    "bigram_coverage",  # the same for syllable bigrams
    "answer_type",  # the sentence holds the kind of thing asked for
    "passage_likelihood",  # the passage's ranker likelihood relative to the best passage
    "first_passage",  # the sentence is in the best passage
    "length",  # sentence length / MAX_ANSWER_CHARS
    "phrase",  # the longest run of the question's words in the sentence, header words aside
    "context_coverage",  # the same, the previous unit's words counting as context too
    "focus",  # the asked kind of thing next to the question's focus words (qabot.focus)
    "asked_year",  # 1 the unit names a year the question names, -1 only other years
)
# The weights are the "sentence" model of the embedder's model file (qabot.fitted), fitted by
# bench/fit_ranker.py on the UIT train files. context_coverage: a sentence often leaves its
# subject to the one before it ("Ông ...", "Số lượng ... tăng lên ..."). Held-out on UIT
# train, with the ranker of that time: best-sentence accuracy 0.776 -> 0.781, answer@1
# 0.802 -> 0.804.


_NUMBER = re.compile(r"\d")
_NAME = re.compile(r"\b[A-ZĐ]\w*(?:\s+[A-ZĐ]\w*){1,3}\b")
_ORGANISATION = re.compile(
    r"\b(?:Ban|Văn phòng|Sở|Bộ|Ủy ban|Hội|Đoàn|Phòng|Trung tâm|Công ty|Trường|Khoa)\s+[A-ZĐ]"
)


def answer_type_match(kind: str | None, text: str) -> float:
    if kind == NUMBER:
        # "Bao nhiêu" asks for a quantity: the digits of a date or a year do not count.
        return float(bool(_NUMBER.search(DATE_PATTERN.sub(" ", text))))
    if kind == DATE:
        return float(bool(DATE_PATTERN.search(text)))
    if kind in (PERSON, PLACE):
        return float(bool(_NAME.search(text)))
    if kind == ORGANISATION:
        return float(bool(_ORGANISATION.search(text)))
    return 0.0


@dataclass(frozen=True)
class CitedPassage:
    rank: int
    text: str
    score: float
    doc_id: str
    title: str
    date: str | None
    source: str
    paragraph: int
    highlight: tuple[int, int] | None  # where the short answer lies in ``text``


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    answer: str
    passages: tuple[CitedPassage, ...]
    took_ms: float
    # The question as searched: the follow-up made self-contained, diacritics restored.
    # Equal to ``question`` when nothing was rewritten.
    interpreted_question: str = ""
    # The id of this answer in the question log, for feedback; None when it was not logged.
    answer_id: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        for passage in data["passages"]:
            passage["highlight"] = list(passage["highlight"]) if passage["highlight"] else None
        return data


@dataclass(frozen=True)
class SentenceCandidate:
    rank: int  # of the hit the sentence is in
    start: int  # offsets in that hit's passage text
    end: int
    features: np.ndarray


def _unit_tokens(text: str, folded: bool) -> list[str]:
    return tokens(fold(text) if folded else text)


def phrase_match(question: tuple[str, ...], sentence: list[str], header: frozenset[str]) -> float:
    """Share of the question's words that the sentence repeats as one unbroken run.

    Words of the context header (title, date) do not count: every sentence has that context,
    so repeating it is no evidence that this sentence is the answer.
    """
    plain_header = {t.lstrip("~") for t in header}
    informative = sum(1 for t in question if t not in plain_header)
    if not informative or not sentence:
        return 0.0
    positions: dict[str, list[int]] = {}
    for j, token in enumerate(question):
        positions.setdefault(token, []).append(j)
    best = 0
    for i, token in enumerate(sentence):
        for j in positions.get(token, ()):
            k = count = 0
            while (
                i + k < len(sentence)
                and j + k < len(question)
                and sentence[i + k] == question[j + k]
            ):
                count += question[j + k] not in plain_header
                k += 1
            best = max(best, count)
    return best / informative


def relative_likelihoods(result: SearchResult) -> list[float]:
    """Each hit's likelihood relative to the best one (1.0 for the best)."""
    if not result.hits:
        return []
    best = max(hit.score for hit in result.hits)
    return [math.exp(hit.score - best) for hit in result.hits]


def sentence_candidates(
    result: SearchResult, index: LoadedIndex, dense_scale: float
) -> list[SentenceCandidate]:
    """Every unit of the first passages, with its SENTENCE_FEATURES."""
    query = result.query
    # The corpus's own idf, without the general-language prior that ranking uses: between the
    # sentences of a few passages the prior cost held-out best-sentence accuracy on UIT
    # train (0.786 without it, 0.774 with it).
    vocabulary, idf = index.bm25.vocabulary, index.bm25.idf
    max_idf = float(idf.max()) if len(idf) else 1.0

    def weight(term: str) -> float:
        return float(idf[vocabulary[term]]) if term in vocabulary else max_idf

    unigrams = {t: weight(t) for t in query.terms if "_" not in t}
    bigrams = {t: weight(t) for t in query.terms if "_" in t}
    uni_total, bi_total = sum(unigrams.values()) or 1.0, sum(bigrams.values()) or 1.0

    def coverage(*word_sets: frozenset[str]) -> float:
        """idf share of the question's syllables found in any of word_sets."""
        return sum(v for t, v in unigrams.items() if any(t in w for w in word_sets)) / uni_total

    likelihood = relative_likelihoods(result)
    # "bao nhiêu [đảng viên]": a sentence that puts a number next to "đảng viên" answers
    # better than one that only holds a number somewhere.
    focus = question_focus(query.interpreted, query.folded, query.answer_type)
    asked_years = years(query.interpreted)
    found: list[SentenceCandidate] = []
    for rank, hit in enumerate(result.hits[:SENTENCE_SOURCES]):
        if hit.passage.kind == CAPTION:
            continue
        spans, vectors = index.sentences_of(hit.row)
        cosines = vectors @ result.query_vector if len(vectors) else []
        terms = index.sentence_terms(hit.row, query.folded)
        # The header (title, date) is the context of every sentence, as in ranking.
        header = index.header_terms(hit.row, query.folded)
        units = [hit.passage.text[start:end] for start, end in spans.tolist()]
        # A unit that ends with a colon introduces a list: its words are the context of the
        # list's items, the way the header is every unit's.
        owners = list_owners(units)
        previous: frozenset[str] = frozenset()
        for (start, end), unit, owner, cosine, (words, pairs) in zip(
            spans.tolist(), units, owners, cosines, terms, strict=True
        ):
            context = (header | terms[owner][0]) if owner is not None else header
            features = [
                float(cosine),
                coverage(words, context),
                sum(v for t, v in bigrams.items() if t in pairs) / bi_total,
                answer_type_match(query.answer_type, unit),
                likelihood[rank],
                float(rank == 0),
                min(len(unit), 2 * MAX_ANSWER_CHARS) / MAX_ANSWER_CHARS,
                phrase_match(query.content_tokens, _unit_tokens(unit, query.folded), header),
                coverage(words, context, previous),
                focus_match(focus, unit, query.folded),
                year_match(asked_years, unit),
            ]
            previous = words
            found.append(SentenceCandidate(rank, start, end, np.array(features, dtype=np.float32)))
    if found:
        best = max(c.features[0] for c in found)
        for c in found:
            c.features[0] = math.exp((c.features[0] - best) / dense_scale)
    return found


def _clause_window(
    text: str, start: int, end: int, query_terms: set[str], folded: bool
) -> tuple[int, int]:
    """Shorten a long sentence to about MAX_ANSWER_CHARS from its best-matching clause on."""
    if end - start <= MAX_ANSWER_CHARS:
        return start, end
    clause_starts = [start] + [start + m.end() for m in re.finditer(r"[;,:]\s+", text[start:end])]
    best = max(
        clause_starts,
        key=lambda b: len(term_sets(text[b : min(end, b + 120)], folded)[0] & query_terms),
    )
    window_start, window_end = best, min(end, best + MAX_ANSWER_CHARS)
    if window_end - window_start < MAX_ANSWER_CHARS:  # close to the end: reach back instead
        window_start = max(start, window_end - MAX_ANSWER_CHARS)
        if window_start > start:
            window_start = text.find(" ", window_start, window_end) + 1 or window_start
    if window_end < end:
        cut = text.rfind(" ", window_start, window_end)
        window_end = cut if cut > window_start else window_end
    return window_start, window_end


def extract_answer(
    result: SearchResult, index: LoadedIndex, model: LinearModel, dense_scale: float
) -> tuple[str, int | None, tuple[int, int] | None]:
    """The sentence (or two) that best answers, the hit it came from, and its span."""
    candidates = sentence_candidates(result, index, dense_scale)
    if not candidates:
        return "", None, None
    scores = [float(model.score(c.features)) for c in candidates]
    at = max(range(len(candidates)), key=scores.__getitem__)
    best = candidates[at]
    text = result.hits[best.rank].passage.text
    if introduces(text[best.start : best.end]):
        # A unit ending with a colon heads a list and answers nothing alone: the answer is
        # its best item, with the heading when both fit.
        items = _introduced(candidates, at, text)
        if items:
            item = max(items, key=scores.__getitem__)
            if candidates[item].end - best.start <= MAX_TWO_UNITS_CHARS:
                return _span(text, best.rank, best.start, candidates[item].end)
            at, best = item, candidates[item]
    companion = _companion(candidates, scores, at)
    if companion is not None:
        start, end = min(best.start, companion.start), max(best.end, companion.end)
        if end - start <= MAX_TWO_UNITS_CHARS:
            return _span(text, best.rank, start, end)
        # A long next unit is cut to what fits: its opening often finishes the thought.
        cut = text.rfind(" ", companion.start, best.start + MAX_TWO_UNITS_CHARS - 2)
        if companion.start > best.start and cut - companion.start >= MIN_COMPANION_CHARS:
            return text[best.start : cut].strip() + " …", best.rank, (best.start, cut)
    query_terms = {t for t in result.query.terms if "_" not in t}
    start, end = _clause_window(text, best.start, best.end, query_terms, result.query.folded)
    short = text[start:end].strip()
    if end < best.end:
        short += " …"
    return short, best.rank, (start, end)


def _span(text: str, rank: int, start: int, end: int) -> tuple[str, int, tuple[int, int]]:
    return text[start:end].strip(), rank, (start, end)


def _introduced(candidates: list[SentenceCandidate], at: int, text: str) -> list[int]:
    """The units of the list that a heading unit introduces (see text.list_owners)."""
    same = [j for j, c in enumerate(candidates) if c.rank == candidates[at].rank]
    owners = list_owners([text[candidates[j].start : candidates[j].end] for j in same])
    heading = same.index(at)
    return [j for j, owner in zip(same, owners, strict=True) if owner == heading]


def _companion(
    candidates: list[SentenceCandidate], scores: list[float], at: int
) -> SentenceCandidate | None:
    """The unit next to the best one that scores almost as well, or None.

    Candidates come in text order, so the best one's neighbours in the list are its
    neighbours in the passage when they come from the same hit.
    """
    best = candidates[at]
    neighbours = [
        j for j in (at - 1, at + 1) if 0 <= j < len(candidates) and candidates[j].rank == best.rank
    ]
    if not neighbours:
        return None
    chosen = max(neighbours, key=scores.__getitem__)
    other = candidates[chosen]
    if scores[chosen] < scores[at] - COMPANION_MARGIN:
        return None
    return other


def compose(
    result: SearchResult,
    index: LoadedIndex,
    models: FittedModels,
    took_ms: float,
    question: str | None = None,
) -> Answer:
    """The answer to ``question`` (as typed) from the search of its interpreted form."""
    models.sentence.check(SENTENCE_FEATURES, "sentence")
    found = result.found
    short, source_rank, span = (
        extract_answer(result, index, models.sentence, models.dense_scale)
        if found
        else ("", None, None)
    )
    # A passage's score: the confidence that the corpus answers, shared out by the ranker.
    scores = [result.confidence * r for r in relative_likelihoods(result)]
    passages = [
        _cite(hit, rank, index, scores[rank - 1], span if source_rank == rank - 1 else None)
        for rank, hit in enumerate(result.hits, start=1)
    ]
    return Answer(
        question=question if question is not None else result.query.text,
        found=found,
        answer=short,
        passages=tuple(passages),
        took_ms=round(took_ms, 1),
        interpreted_question=result.query.interpreted,
    )


def _cite(
    hit: Hit, rank: int, index: LoadedIndex, score: float, span: tuple[int, int] | None
) -> CitedPassage:
    document = index.document(hit.passage.doc_id)
    return CitedPassage(
        rank=rank,
        text=hit.passage.text,
        score=round(score, 4),
        doc_id=hit.passage.doc_id,
        title=document.title if document else hit.passage.doc_id,
        date=document.date if document else None,
        source=document.source if document else hit.passage.doc_id,
        paragraph=hit.passage.paragraph,
        highlight=span,
    )
