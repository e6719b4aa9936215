"""Index terms: syllables, syllable bigrams and their accent-folded twins.

Vietnamese words are mostly two or more syllables ("đảng viên"), so bigrams carry much of
the meaning; folded forms ("~dang_vien") let a question typed without accents match. The
index, the question analysis and the answer features all see text through these functions.
"""

from __future__ import annotations

import functools
from itertools import pairwise

from qabot import lexicon
from qabot.text import fold, tokens

FOLDED_PREFIX = "~"


def unit_terms(syllables: list[str]) -> list[str]:
    """Syllables and adjacent-syllable bigrams."""
    return syllables + [f"{a}_{b}" for a, b in pairwise(syllables)]


def exact_terms(text: str) -> list[str]:
    return unit_terms(tokens(text))


def folded_terms(text: str) -> list[str]:
    return [FOLDED_PREFIX + t for t in unit_terms(tokens(fold(text)))]


def index_terms(text: str) -> list[str]:
    """What a passage is indexed under: its exact terms and their folded twins."""
    return exact_terms(text) + folded_terms(text)


# The answer's sentences are tokenised for their term sets and again for their runs of the
# question's words (qabot.answer): once is enough.
@functools.lru_cache(maxsize=8192)
def syllables(text: str, folded: bool) -> tuple[str, ...]:
    """A text's syllables, lower case (accent-folded when ``folded``), without prefix."""
    return tuple(_syllables(text, folded))


def _syllables(text: str, folded: bool) -> list[str]:
    return tokens(fold(text) if folded else text)


def term_sets(text: str, folded: bool) -> tuple[frozenset[str], frozenset[str]]:
    """A text's syllables and syllable bigrams as sets, in the form a query uses: exact, or
    accent-folded with FOLDED_PREFIX when the question was typed without diacritics."""
    units = syllables(text, folded)
    prefix = FOLDED_PREFIX if folded else ""
    return (
        frozenset(prefix + s for s in units),
        frozenset(f"{prefix}{a}_{b}" for a, b in pairwise(units)),
    )


def syllable_set(text: str, folded: bool) -> frozenset[str]:
    """``term_sets(text, folded)[0]`` without making the bigrams: a context header's syllables
    are read for every report a question's candidates come from."""
    # Not through syllables' cache: headers are cached per report, clause windows are many.
    if folded:
        return frozenset(FOLDED_PREFIX + s for s in _syllables(text, folded))
    return frozenset(_syllables(text, folded))


def term_prior(term: str) -> float:
    """A term's general-language weight (qabot.lexicon.prior)."""
    folded = term.startswith(FOLDED_PREFIX)
    return lexicon.prior(tuple(term.removeprefix(FOLDED_PREFIX).split("_")), folded)
