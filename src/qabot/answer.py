"""From ranked passages to what a reader gets: a short extractive answer and citations."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from qabot.index import LoadedIndex
from qabot.index.bm25 import FOLDED_PREFIX, unit_terms
from qabot.ingest import CAPTION
from qabot.search import Hit, SearchResult, answer_type_match
from qabot.text import fold, sentence_spans, tokens

MAX_ANSWER_CHARS = 300
SENTENCE_SOURCES = 3  # the short answer comes from one of the first passages


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

    def to_dict(self) -> dict:
        data = asdict(self)
        for passage in data["passages"]:
            passage["highlight"] = list(passage["highlight"]) if passage["highlight"] else None
        return data


def _sentence_terms(text: str, folded: bool) -> set[str]:
    syllables = tokens(fold(text) if folded else text)
    terms = unit_terms(syllables)
    return {FOLDED_PREFIX + t for t in terms} if folded else set(terms)


def _clause_window(
    text: str, start: int, end: int, query_terms: set[str], folded: bool
) -> tuple[int, int]:
    """Shorten a long sentence to about MAX_ANSWER_CHARS from its best-matching clause on."""
    if end - start <= MAX_ANSWER_CHARS:
        return start, end
    clause_starts = [start] + [start + m.end() for m in re.finditer(r"[;,:]\s+", text[start:end])]
    best = max(
        clause_starts,
        key=lambda b: len(_sentence_terms(text[b : min(end, b + 120)], folded) & query_terms),
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


def extract_answer(result: SearchResult, index: LoadedIndex) -> tuple[str, int | None, tuple[int, int] | None]:
    """The sentence (or clause) that best answers, the hit it came from, and its span."""
    query = result.query
    idf = index.bm25.idf
    vocabulary = index.bm25.vocabulary
    query_terms = set(query.terms) | set(query.variant_terms)
    weight = {t: float(idf[vocabulary[t]]) if t in vocabulary else 0.0 for t in query_terms}
    total = sum(weight.values()) or 1.0
    best: tuple[float, int, int, int] | None = None
    relative = _relative_scores(result)
    for rank, hit in enumerate(result.hits[:SENTENCE_SOURCES]):
        if hit.passage.kind == CAPTION:
            continue
        text = hit.passage.text
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            matched = _sentence_terms(sentence, query.folded) & query_terms
            score = sum(weight[t] for t in matched) / total
            score += 0.25 * answer_type_match(query.answer_type, sentence)
            score += 0.5 * relative[rank] - 0.05 * rank
            if best is None or score > best[0]:
                best = (score, rank, start, end)
    if best is None:
        return "", None, None
    _, rank, start, end = best
    text = result.hits[rank].passage.text
    start, end = _clause_window(text, start, end, query_terms, query.folded)
    short = text[start:end].strip()
    if end < len(text) and not re.search(r"[.!?…]$", short) and len(short) >= MAX_ANSWER_CHARS - 40:
        short += " …"
    return short, rank, (start, end)


def _relative_scores(result: SearchResult) -> list[float]:
    """Each hit's likelihood relative to the best one (1.0 for the best)."""
    if not result.hits:
        return []
    best = max(hit.score for hit in result.hits)
    return [math.exp(hit.score - best) for hit in result.hits]


def compose(result: SearchResult, index: LoadedIndex, took_ms: float) -> Answer:
    found = result.found
    short, source_rank, span = extract_answer(result, index) if found else ("", None, None)
    # A passage's score: the confidence that the corpus answers, shared out by the ranker.
    scores = [result.confidence * r for r in _relative_scores(result)]
    passages = [
        _cite(hit, rank, index, scores[rank - 1], span if source_rank == rank - 1 else None)
        for rank, hit in enumerate(result.hits, start=1)
    ]
    return Answer(
        question=result.query.text,
        found=found,
        answer=short,
        passages=tuple(passages),
        took_ms=round(took_ms, 1),
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
