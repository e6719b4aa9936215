"""Diacritic restoration: "dang uy khu kinh te" -> "đảng ủy khu kinh tế".

Many people type Vietnamese without its marks, or with only some. For each syllable typed
without marks the candidates are the accented syllables that fold to it, from the index's
own passages (with their counts) and from the general Vietnamese word list of wordfreq.
A syllable bigram model over the passages, backed off to unigrams (corpus, then the general
list), scores every choice; Viterbi picks the most likely sentence.

Only letters change: casing, spacing and punctuation stay as typed. Syllables typed with
any mark stay as typed, and so do numbers and abbreviations in capitals ("KCN", "TP.HCM").
Statistics are plain arrays (syllable ids, counts, bigram keys), so an index version can
store them beside its other files.
"""

from __future__ import annotations

import itertools
import math
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import wordfreq

from qabot.text import could_be_syllable, fold, has_diacritics, looks_vietnamese, token_matches

FILE = "restore.npz"
LANGUAGE = "vi"
NUMBER = "0"  # every number is one context word ("năm 2018", "năm 2019" alike)
MAX_CANDIDATES = 12  # accented forms per folded syllable, most frequent first
# Transitions a Restorer remembers (each at most 12 x 12 float64: 1.2 KB; 24 MB in all).
TRANSITIONS_KEPT = 20_000

# Model constants, chosen on the UIT train questions (bench/restore.py prints the accuracy):
# the corpus unigram weighs CORPUS_SHARE against the general list; a bigram's evidence is
# smoothed towards the unigram with BIGRAM_PRIOR pseudo-counts.
CORPUS_SHARE = 0.5
BIGRAM_PRIOR = 2.0
FLOOR = 1e-9  # probability of a syllable neither source knows
# Every transition keeps this share of the unigram. Witten-Bell leaves an unseen pair after
# a word (types + prior) / (count + types + prior) of its mass: a corpus that grows by
# repeating what it says ("năm" always before a number) makes that share vanish, and a
# path through a word the corpus never uses (no discount) wins: at a million generated
# passages "nam nay" became "nam này" and "giu chuc vu" "giũ chục vú". 0.1 scored best on the
# UIT train questions (0.9634 of syllables, 0.9629 without); dev 0.986 -> 0.988, and against
# a million passages' statistics 0.929 -> 0.953 (dev) and 0.947 -> 0.980 (generated).
UNIGRAM_SHARE = 0.1
# In a question typed partly with marks, a syllable typed plain usually is plain ("khu",
# "kinh", "ban"): keeping it is favoured by this factor.
KEEP_PLAIN = 50.0

# Reports rarely ask questions, so the corpus says little about question grammar ("có bao
# nhiêu", "những gì", "ở đâu"); these general phrases count as if seen PHRASE_COUNT times.
QUESTION_FRAMES = (
    "như thế nào", "thế nào", "ra sao", "là gì", "là ai", "là bao nhiêu", "bao nhiêu",
    "bao lâu", "bao giờ", "khi nào", "lúc nào", "ngày nào", "năm nào", "tháng nào",
    "ở đâu", "tại đâu", "nơi nào", "vì sao", "tại sao", "làm sao", "hay không", "có phải",
    "được không", "phải không", "đúng không", "gồm những", "những gì", "những ai",
    "có bao nhiêu", "có những", "có gì", "có được", "có không", "là những gì",
    "gồm những gì", "những nội dung gì", "được bao nhiêu", "vào đâu", "đến đâu", "từ đâu",
    "từ khi nào", "vào năm nào", "vào thời gian nào",
)  # fmt: skip
PHRASE_COUNT = 5
# ... PHRASE_COUNT times for every PHRASE_WORDS words of the corpus (at least once): reports
# do not ask more questions as they grow, and at a million passages five counts of "bao
# nhiêu" against millions of "bảo" and "nhiều" made "bao nhieu" "bảo nhiều". The sample
# reports hold 9k words and the UIT contexts 20k; the question frames' weight there is
# what it was.
PHRASE_WORDS = 10_000
# Words counted (with their pairs) before the pairs' counts are merged: about 100 MB of
# pending ids at most.
COUNT_BLOCK = 5_000_000

_WORD = re.compile(r"[^\W\d_]+")
# Most lower-case words that cannot be Vietnamese syllables a question typed without marks
# may have and still be read as Vietnamese (a loan word or two: "game", "dota").
FOREIGN_SHARE = 0.15


def _word_form(raw: str) -> str:
    return NUMBER if raw[0].isdigit() else raw.lower()


def _syllable_words(text: str) -> list[str]:
    return [_word_form(m.group()) for m in token_matches(text)]


@cache
def _general() -> dict[str, float]:
    """Frequency of each Vietnamese syllable in the general word list (lower case)."""
    table = {}
    for word, frequency in wordfreq.get_frequency_dict(LANGUAGE).items():
        if word.isalpha() and could_be_syllable(word):
            table[word] = frequency
    total = sum(table.values()) or 1.0
    return {w: f / total for w, f in table.items()}


@dataclass(frozen=True)
class RestoreStats:
    """Counts from a corpus: what an index version stores."""

    syllables: tuple[str, ...]  # lower-case words of the corpus (NUMBER for numbers)
    counts: np.ndarray  # (len(syllables),) occurrences
    bigram_keys: np.ndarray  # sorted: left id * len(syllables) + right id
    bigram_counts: np.ndarray

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> RestoreStats:
        """Counts of the texts' words and adjacent word pairs (and the question phrases').

        Streamed, with memory bounded by the distinct pairs: words get integer ids as they
        come, and pairs (left id, right id) are counted as int64 keys in blocks of
        COUNT_BLOCK, merged into sorted (key, count) arrays. A Counter of string pairs, with
        every text held in a list, took gigabytes at a million passages."""
        ids: dict[str, int] = {}
        counts = np.zeros(0, dtype=np.int64)
        keys = np.zeros(0, dtype=np.int64)  # left id << 32 | right id, sorted, distinct
        values = np.zeros(0, dtype=np.int64)
        words_seen, pairs_seen = array("q"), array("q")

        def flush() -> None:
            nonlocal counts, keys, values
            seen = np.bincount(np.frombuffer(words_seen, dtype=np.int64), minlength=len(ids))
            seen[: len(counts)] += counts
            counts = seen
            block, block_counts = np.unique(
                np.frombuffer(pairs_seen, dtype=np.int64), return_counts=True
            )
            keys, inverse = np.unique(np.concatenate([keys, block]), return_inverse=True)
            summed = np.zeros(len(keys), dtype=np.int64)
            np.add.at(summed, inverse, np.concatenate([values, block_counts]))
            values = summed
            del words_seen[:], pairs_seen[:]

        phrases = "\n".join(list(QUESTION_FRAMES) * PHRASE_COUNT)
        for text in itertools.chain(texts, [phrases]):
            for line in text.splitlines():
                line_ids = [ids.setdefault(w, len(ids)) for w in _syllable_words(line)]
                words_seen.extend(line_ids)
                pairs_seen.extend((a << 32) | b for a, b in pairwise(line_ids))
            if len(words_seen) >= COUNT_BLOCK:
                flush()
        flush()
        syllables = tuple(sorted(ids))
        rank = np.zeros(len(ids), dtype=np.int64)  # word id -> its place among syllables
        rank[[ids[s] for s in syllables]] = np.arange(len(syllables))
        size = max(len(syllables), 1)
        sorted_keys = rank[keys >> 32] * size + rank[keys & 0xFFFFFFFF]
        order = np.argsort(sorted_keys, kind="stable")
        by_rank = np.zeros(len(syllables), dtype=np.int64)
        by_rank[rank] = counts
        return cls(
            syllables,
            by_rank.astype(np.int32),
            sorted_keys[order],
            values[order].astype(np.int32),
        )

    def save(self, folder: Path) -> None:
        with open(folder / FILE, "wb") as handle:
            np.savez_compressed(
                handle,
                syllables=np.array("\n".join(self.syllables)),
                counts=self.counts,
                bigram_keys=self.bigram_keys,
                bigram_counts=self.bigram_counts,
            )

    @classmethod
    def load(cls, folder: Path) -> RestoreStats | None:
        path = folder / FILE
        if not path.is_file():
            return None
        with np.load(path) as data:
            text = str(data["syllables"])
            return cls(
                tuple(text.split("\n")) if text else (),
                data["counts"],
                data["bigram_keys"],
                data["bigram_counts"],
            )


@dataclass(frozen=True)
class Restorer:
    """Restores the marks of a question from a corpus's statistics and the general list."""

    stats: RestoreStats
    # The statistics the model reads: ``stats`` with the question frames in proportion.
    counted: RestoreStats = field(init=False, repr=False)
    words: tuple[str, ...] = field(init=False, repr=False)  # corpus syllables, then general
    log_unigram: np.ndarray = field(init=False, repr=False)
    left_counts: np.ndarray = field(init=False, repr=False)  # per corpus id: as a left word
    left_types: np.ndarray = field(init=False, repr=False)  # per corpus id: distinct followers
    unigram: np.ndarray = field(init=False, repr=False)
    candidates: dict = field(init=False, repr=False)  # folded syllable -> ids, best first
    ids: dict = field(init=False, repr=False)
    # (previous ids, current ids) -> their _transition: questions repeat their phrases
    # ("Ban Quản lý", "chi bộ"), and each transition is some twenty small array operations,
    # half of restoring an accented question with a few plain syllables.
    transitions: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stats = with_question_frames(self.stats)
        general = _general()
        extra = [w for w in general if w not in set(stats.syllables)]
        words = (*stats.syllables, *extra)
        total = float(stats.counts.sum()) or 1.0
        corpus = np.zeros(len(words), dtype=np.float64)
        corpus[: len(stats.syllables)] = stats.counts / total
        general_p = np.array([general.get(w, 0.0) for w in words], dtype=np.float64)
        unigram = CORPUS_SHARE * corpus + (1 - CORPUS_SHARE) * general_p + FLOOR
        size = max(len(stats.syllables), 1)
        left = np.bincount(stats.bigram_keys // size, weights=stats.bigram_counts, minlength=size)
        types = np.bincount(stats.bigram_keys // size, minlength=size).astype(np.float64)
        grouped: dict[str, list[int]] = {}
        for i, w in enumerate(words):
            grouped.setdefault(fold(w), []).append(i)
        candidates = {
            k: np.array(sorted(v, key=lambda i: -unigram[i])[:MAX_CANDIDATES], dtype=np.int64)
            for k, v in grouped.items()
        }
        object.__setattr__(self, "counted", stats)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "unigram", unigram)
        object.__setattr__(self, "log_unigram", np.log(unigram))
        object.__setattr__(self, "left_counts", left)
        object.__setattr__(self, "left_types", types)
        object.__setattr__(self, "candidates", candidates)
        object.__setattr__(self, "ids", {w: i for i, w in enumerate(words)})
        object.__setattr__(self, "transitions", {})

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Restorer:
        return cls(RestoreStats.from_texts(texts))

    def _transition(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """_transitions, remembered (read-only) per pair of candidate lists: at most
        TRANSITIONS_KEPT pairs, all forgotten at once when there are that many."""
        key = (previous.tobytes(), current.tobytes())
        found = self.transitions.get(key)
        if found is None:
            found = self._transitions(previous, current)
            found.setflags(write=False)
            if len(self.transitions) >= TRANSITIONS_KEPT:  # bounded; common pairs come back
                self.transitions.clear()
            self.transitions[key] = found
        return found

    def _transitions(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """log P(current | previous) for every pair: (len(previous), len(current)).

        Witten-Bell smoothing: a word seen before many different words ("có") leaves more
        of its mass to unseen followers than one always followed by the same word; and
        UNIGRAM_SHARE of every transition is the unigram, however large the corpus."""
        stats = self.counted
        size = max(len(stats.syllables), 1)
        in_corpus = previous < len(stats.syllables)
        counts = np.zeros((len(previous), len(current)), dtype=np.float64)
        left = np.zeros(len(previous), dtype=np.float64)
        types = np.zeros(len(previous), dtype=np.float64)
        if in_corpus.any() and len(stats.bigram_keys):
            p = previous[in_corpus]
            corpus_current = current < size
            keys = p[:, None] * size + np.where(corpus_current, current, 0)[None, :]
            at = np.searchsorted(stats.bigram_keys, keys)
            at = np.minimum(at, len(stats.bigram_keys) - 1)
            hit = (stats.bigram_keys[at] == keys) & corpus_current[None, :]
            counts[in_corpus] = np.where(hit, stats.bigram_counts[at], 0)
            left[in_corpus] = self.left_counts[p]
            types[in_corpus] = self.left_types[p]
        backoff = (types + BIGRAM_PRIOR)[:, None]
        unigram = self.unigram[current][None, :]
        bigram = (counts + backoff * unigram) / (left[:, None] + backoff)
        return np.log((1.0 - UNIGRAM_SHARE) * bigram + UNIGRAM_SHARE * unigram)

    def restore(self, question: str) -> str:
        """The question with the marks of its plain syllables restored; unchanged when there
        is nothing to restore."""
        matches = list(token_matches(question))
        if not matches or not _vietnamese(question):
            return question
        partly = has_diacritics(question)
        all_caps = question.upper() == question
        # Per token: candidate ids and a log bonus per candidate; None where the chain breaks.
        lattice: list[tuple[np.ndarray, np.ndarray] | None] = []
        restorable: list[bool] = []
        for match in matches:
            raw = match.group()
            form = _word_form(raw)
            fixed = self.ids.get(form)
            choices = None
            if raw.isalpha() and not has_diacritics(raw) and (all_caps or not _is_code(raw)):
                choices = self.candidates.get(form)
            if choices is None or (len(choices) == 1 and choices[0] == fixed):
                restorable.append(False)
                lattice.append(None if fixed is None else (np.array([fixed]), np.zeros(1)))
                continue
            bonus = np.zeros(len(choices))
            if partly and fixed is not None:
                bonus[choices == fixed] = math.log(KEEP_PLAIN)
            restorable.append(True)
            lattice.append((choices, bonus))
        if not any(restorable):
            return question
        chosen = self._decode(lattice)
        out, last = [], 0
        for match, ok, word_id in zip(matches, restorable, chosen, strict=True):
            if not ok or word_id is None:
                continue
            out.append(question[last : match.start()])
            out.append(_with_case(self.words[word_id], match.group()))
            last = match.end()
        out.append(question[last:])
        return "".join(out)

    def _decode(self, lattice: list[tuple[np.ndarray, np.ndarray] | None]) -> list[int | None]:
        """Viterbi over each stretch of tokens with a choice. A token with one candidate
        separates what comes before it from what comes after it in a bigram model, so each
        stretch is decoded with its fixed neighbours as its ends and nothing else: an
        accented question with two plain words costs four transitions, not one a token."""
        chosen: list[int | None] = [
            None if entry is None or len(entry[0]) != 1 else int(entry[0][0]) for entry in lattice
        ]
        position = 0
        while position < len(lattice):
            if chosen[position] is not None or lattice[position] is None:
                position += 1
                continue
            start = position - 1 if position > 0 and lattice[position - 1] is not None else position
            end = position
            while end < len(lattice) and lattice[end] is not None and chosen[end] is None:
                end += 1
            if end < len(lattice) and lattice[end] is not None:
                end += 1  # the fixed right neighbour; it is also the next stretch's left one
            self._viterbi(lattice, start, end, chosen)
            position = end
        return chosen

    def _viterbi(
        self,
        lattice: list[tuple[np.ndarray, np.ndarray] | None],
        start: int,
        end: int,
        chosen: list[int | None],
    ) -> None:
        """The best path through lattice[start:end] (no None in it), written into chosen."""
        ids, bonus = lattice[start]
        score = self.log_unigram[ids] + bonus
        back: list[np.ndarray] = []
        for position in range(start + 1, end):
            current, bonus = lattice[position]
            total = score[:, None] + self._transition(lattice[position - 1][0], current)
            back.append(total.argmax(axis=0))
            score = total.max(axis=0) + bonus
        best = int(score.argmax())
        for position in range(end - 1, start - 1, -1):
            chosen[position] = int(lattice[position][0][best])
            if position > start:
                best = int(back[position - start - 1][best])


def _vietnamese(question: str) -> bool:
    """A question in another language ("What did the committee do?") is not restored word by
    word: it has several lower-case words that cannot be Vietnamese syllables. Capitalised
    ones are names ("Bill Gates", "Microsoft") and may appear in a Vietnamese question."""
    words = _WORD.findall(question)
    foreign = sum(1 for w in words if w.islower() and not could_be_syllable(w))
    return looks_vietnamese(question) and foreign <= max(1, FOREIGN_SHARE * len(words))


def _is_code(raw: str) -> bool:
    """An abbreviation, code or name with inner capitals ("KCN", "TP", "GieSu")."""
    return len(raw) > 1 and any(ch.isupper() for ch in raw[1:])


def _with_case(word: str, typed: str) -> str:
    if len(word) != len(typed):
        return typed
    return "".join(w.upper() if t.isupper() else w for w, t in zip(word, typed, strict=True))


def merge_stats(parts: list[RestoreStats]) -> RestoreStats:
    """The statistics of several corpora's texts together: equal to ``from_texts`` of all
    their texts (each part counted the question phrases once; the sum counts them once)."""
    if len(parts) == 1:
        return parts[0]
    phrases = RestoreStats.from_texts(())
    if not parts:
        return phrases
    # The phrases' counts are taken away len(parts) - 1 times.
    return combine([(part, 1) for part in parts] + [(phrases, 1 - len(parts))])


def with_question_frames(stats: RestoreStats) -> RestoreStats:
    """``stats`` with the question frames counted PHRASE_COUNT times for every PHRASE_WORDS
    words of the corpus (``stats`` holds them PHRASE_COUNT times once)."""
    more = int(stats.counts.sum()) // PHRASE_WORDS - 1
    if more <= 0:
        return stats
    return combine([(stats, 1), (RestoreStats.from_texts(()), more)])


def combine(weighted: list[tuple[RestoreStats, int]]) -> RestoreStats:
    """The sum of the statistics, each counted ``factor`` times (a negative factor takes
    counts away); syllables whose count falls to 0 are dropped."""
    syllables = sorted({s for part, _ in weighted for s in part.syllables})
    ids = {s: i for i, s in enumerate(syllables)}
    size = max(len(syllables), 1)
    counts = np.zeros(len(syllables), dtype=np.int64)
    keys, values = [], []
    for part, factor in weighted:
        remap = np.array([ids[s] for s in part.syllables], dtype=np.int64)
        if len(remap):
            np.add.at(counts, remap, part.counts.astype(np.int64) * factor)
        part_size = max(len(part.syllables), 1)
        left, right = np.divmod(part.bigram_keys.astype(np.int64), part_size)
        if len(left):
            keys.append(remap[left] * size + remap[right])
            values.append(part.bigram_counts.astype(np.int64) * factor)
    all_keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    unique, inverse = np.unique(all_keys, return_inverse=True)
    summed = np.zeros(len(unique), dtype=np.int64)
    np.add.at(summed, inverse, np.concatenate(values) if values else np.zeros(0, np.int64))
    # Syllables whose count fell to 0 cannot occur (the phrases' own are counted in every
    # part), but keep the invariant that every syllable listed occurs.
    present = counts > 0
    if not present.all():
        kept = np.flatnonzero(present)
        new_id = np.full(len(syllables), -1, dtype=np.int64)
        new_id[kept] = np.arange(len(kept))
        left, right = np.divmod(unique, size)
        size = max(len(kept), 1)
        unique = new_id[left] * size + new_id[right]
        syllables = [syllables[i] for i in kept]
        counts = counts[kept]
        order = np.argsort(unique, kind="stable")
        unique, summed = unique[order], summed[order]
    positive = summed > 0
    return RestoreStats(
        tuple(syllables),
        counts.astype(np.int32),
        unique[positive].astype(np.int64),
        summed[positive].astype(np.int32),
    )
