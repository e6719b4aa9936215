"""How common a Vietnamese syllable or syllable bigram is in the language at large.

A report corpus is small (five reports, or one month's), so its document frequencies say
little about how informative a word is: "được" and "đảng viên" may each occur in half the
passages. General-language frequencies, from the Vietnamese word list that the wordfreq
package ships in its wheel, give a prior that BM25's idf is multiplied by: common words
("có", "được", "các") weigh less than rarer ones ("kết nạp", a name, a number).

The constants live in models/lexicon.json with how they were chosen (on held-out folds of
the UIT train files: the ranker's held-out hit@1 went from 0.912 without the prior to 0.919
with it). An index stores the priors it was built with, and its pipeline fingerprint
includes these settings, so changing them rebuilds the index.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import wordfreq

from qabot.text import fold

LANGUAGE = "vi"


@dataclass(frozen=True)
class RaritySettings:
    """prior = (clip(max_zipf - Zipf, rarity_floor, rarity_cap) / rarity_cap) ** prior_power.

    max_zipf is the top of wordfreq's Zipf scale (log10 of occurrences per billion words).
    With the shipped floor 2 and cap 6, every word at least as common as "viên" (Zipf 6)
    counts alike, and so does every word rarer than about one in a million (Zipf 2),
    including the words the list does not know.
    """

    max_zipf: float
    rarity_floor: float
    rarity_cap: float
    prior_power: float


@cache
def _settings_text() -> str:
    return resources.files("qabot").joinpath("models").joinpath("lexicon.json").read_text("utf-8")


@cache
def settings() -> RaritySettings:
    data = json.loads(_settings_text())
    return RaritySettings(
        float(data["max_zipf"]),
        float(data["rarity_floor"]),
        float(data["rarity_cap"]),
        float(data["prior_power"]),
    )


def fingerprint() -> str:
    """Changes when the rarity settings change; part of an index's pipeline fingerprint."""
    s = settings()
    key = f"{s.max_zipf}:{s.rarity_floor}:{s.rarity_cap}:{s.prior_power}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@cache
def _folded_zipf() -> dict[str, float]:
    """Zipf frequency of each folded word: that of its most frequent accented form."""
    table: dict[str, float] = {}
    for word in wordfreq.iter_wordlist(LANGUAGE):  # most frequent first
        table.setdefault(fold(word), wordfreq.zipf_frequency(word, LANGUAGE))
    return table


def _syllable_zipf(syllable: str, folded: bool) -> float:
    if folded:
        return _folded_zipf().get(syllable, 0.0)
    return wordfreq.zipf_frequency(syllable, LANGUAGE)


def word_zipf(word: str, folded: bool = False) -> float:
    """Zipf frequency of one lower-case word, not cached: for words from questions, which
    anyone can make up (``zipf`` caches every term of the index)."""
    return _syllable_zipf(word, folded)


@cache
def zipf(syllables: tuple[str, ...], folded: bool = False) -> float:
    """Zipf frequency of a syllable or a run of syllables (lower case; accent-folded when
    folded is true); 0.0 when the word list does not know it."""
    if len(syllables) == 1:
        return _syllable_zipf(syllables[0], folded)
    if not folded:
        return wordfreq.zipf_frequency(" ".join(syllables), LANGUAGE)
    # wordfreq's rule for a phrase: 1/f = sum of 1/f_i over its words.
    values = [_syllable_zipf(s, folded=True) for s in syllables]
    if min(values) <= 0.0:
        return 0.0
    return math.log10(1.0 / sum(10.0**-v for v in values))


def prior(syllables: tuple[str, ...], folded: bool = False) -> float:
    """A weight in (0, 1] for a term: 1.0 for rare words, less for common ones."""
    s = settings()
    rarity = min(s.rarity_cap, max(s.rarity_floor, s.max_zipf - zipf(syllables, folded)))
    return (rarity / s.rarity_cap) ** s.prior_power
