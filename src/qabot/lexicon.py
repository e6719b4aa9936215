"""How common a Vietnamese syllable or syllable bigram is in the language at large.

A report corpus is small (five reports, or one month's), so its document frequencies say
little about how informative a word is: "được" and "đảng viên" may each occur in half the
passages. General-language frequencies, from the Vietnamese word list that the wordfreq
package ships in its wheel, give a prior that BM25's idf is multiplied by: common words
("có", "được", "các") weigh less than rarer ones ("kết nạp", a name, a number).

The three constants were chosen on held-out folds of the UIT train files: the ranker's
held-out hit@1 (bench/fit_ranker.py) went from 0.912 without the prior to 0.919 with it.
"""

from __future__ import annotations

import math
from functools import cache

import wordfreq

from qabot.text import fold

LANGUAGE = "vi"
MAX_ZIPF = 8.0  # wordfreq's Zipf scale: log10 of occurrences per billion words
# Rarity is MAX_ZIPF - Zipf frequency, clipped to [RARITY_FLOOR, RARITY_CAP]: every word at
# least as common as "viên" (Zipf 6) counts alike, and so does every word rarer than about
# one in a million (Zipf 2), including the words the list does not know.
RARITY_FLOOR = 2.0
RARITY_CAP = 6.0
PRIOR_POWER = 1.5


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
    rarity = min(RARITY_CAP, max(RARITY_FLOOR, MAX_ZIPF - zipf(syllables, folded)))
    return (rarity / RARITY_CAP) ** PRIOR_POWER
