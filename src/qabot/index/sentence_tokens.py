"""Per sentence of a segment, its syllables as ids of the segment's BM25 vocabulary.

Written when a segment is built, beside its sentence spans, so that what a question's
words cover in a candidate's sentences (search.py: sentence, subject and name coverage,
and which sentences may hold the answer focus) is read from arrays instead of tokenising
the candidate's text. Tokenising the candidates' sentences was most of a question's cost on
a large corpus, where most candidates of a question have never been read before.

Files of a segment (a segment without them is read the old way, by tokenising):

- ``sentence_tokens.bin``: int32 ids of every sentence's syllables (qabot.text.tokens), in
  sentence order, back to back;
- ``sentence_token_offsets.npy``: per sentence, where its ids start (sentences + 1, int64);
- ``folded_ids.npy``: per vocabulary id of an exact syllable, the id of its accent-folded
  twin ("đảng" -> "~dang"); -1 for every other term;
- ``inexact_rows.npy``: the rows (local) whose sentences hold a syllable without an id or
  without a folded twin in the vocabulary (none in practice: a passage is indexed with its
  sentences' syllables); they are read the old way.

And, the same way, each document's subject (qabot.subject: the names every passage of a
report inherits), which ranking matches against a question for every candidate's report;
tokenising a report's subject (about 600 characters) cost 0.2 ms the first time a question
met the report, about 2 ms a question on a corpus of thousands of reports:

- ``subject_tokens.npy``: int32 ids of every document's subject syllables, back to back;
- ``subject_token_offsets.npy``: per document, where its ids start (documents + 1, int64);
- ``subject_documents.json``: the documents in that order, and which of them cannot be
  described exactly (read the old way).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qabot.terms import FOLDED_PREFIX
from qabot.text import fold, tokens

TOKENS = "sentence_tokens.bin"
TOKEN_OFFSETS = "sentence_token_offsets.npy"
FOLDED_IDS = "folded_ids.npy"
INEXACT_ROWS = "inexact_rows.npy"
FILES = (TOKENS, TOKEN_OFFSETS, FOLDED_IDS, INEXACT_ROWS)
SUBJECT_TOKENS = "subject_tokens.npy"
SUBJECT_OFFSETS = "subject_token_offsets.npy"
SUBJECT_DOCUMENTS = "subject_documents.json"
SUBJECT_FILES = (SUBJECT_TOKENS, SUBJECT_OFFSETS, SUBJECT_DOCUMENTS)
FLUSH_TOKENS = 1 << 20  # ids held in memory before they are appended to the file


class SentenceTokenWriter:
    """Writes a segment's sentence token files passage by passage, holding at most
    FLUSH_TOKENS ids, the sentence offsets and one id per distinct syllable in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._file = open(folder / TOKENS, "wb")  # noqa: SIM115 - closed in close()
        self._buffer = array("i")
        self._offsets = array("q", [0])
        self._written = 0
        self._folded: dict[int, int] = {}  # exact syllable id -> its folded twin's id
        self._inexact = array("i")
        self._row = 0
        self._subject_tokens = array("i")
        self._subject_offsets = array("q", [0])
        self._subject_documents: list[str] = []
        self._inexact_subjects: list[str] = []

    def add(self, text: str, spans: Sequence[Sequence[int]], vocabulary: Mapping[str, int]) -> None:
        """One passage: its text and its sentences' (start, end) spans. ``vocabulary`` is
        the segment's BM25 vocabulary after the passage was added to it."""
        exact = True
        for start, end in spans:
            for token in tokens(text[start:end]):
                term_id = vocabulary.get(token, -1)
                if term_id < 0 or self._folded_id(term_id, token, vocabulary) < 0:
                    exact = False
                self._buffer.append(term_id)
            self._offsets.append(self._written + len(self._buffer))
        if not exact:
            self._inexact.append(self._row)
        self._row += 1
        if len(self._buffer) >= FLUSH_TOKENS:
            self._flush()

    def add_subject(self, doc_id: str, subject: str, vocabulary: Mapping[str, int]) -> None:
        """One document's subject, once the segment's passages are all added (its names
        are words of its passages, so they have ids)."""
        exact = True
        for token in tokens(subject):
            term_id = vocabulary.get(token, -1)
            if term_id < 0 or self._folded_id(term_id, token, vocabulary) < 0:
                exact = False
            self._subject_tokens.append(term_id)
        self._subject_offsets.append(len(self._subject_tokens))
        self._subject_documents.append(doc_id)
        if not exact:
            self._inexact_subjects.append(doc_id)

    def _folded_id(self, term_id: int, token: str, vocabulary: Mapping[str, int]) -> int:
        found = self._folded.get(term_id)
        if found is None:
            # A syllable folds to one syllable: tokens(fold(text)) is the folded tokens of
            # text, which is what the index and a folded question use.
            folded = tokens(fold(token))
            found = vocabulary.get(FOLDED_PREFIX + folded[0], -1) if len(folded) == 1 else -1
            self._folded[term_id] = found
        return found

    def _flush(self) -> None:
        self._file.write(np.frombuffer(self._buffer, dtype=np.int32).astype("<i4").tobytes())
        self._written += len(self._buffer)
        self._buffer = array("i")

    def close(self, vocabulary_size: int) -> None:
        self._flush()
        self._file.close()
        np.save(self.folder / TOKEN_OFFSETS, np.frombuffer(self._offsets, dtype=np.int64))
        folded = np.full(vocabulary_size, -1, dtype=np.int32)
        if self._folded:
            ids = np.fromiter(self._folded.keys(), dtype=np.int64, count=len(self._folded))
            folded[ids] = np.fromiter(self._folded.values(), np.int32, count=len(self._folded))
        np.save(self.folder / FOLDED_IDS, folded)
        np.save(self.folder / INEXACT_ROWS, np.frombuffer(self._inexact, dtype=np.int32))
        np.save(self.folder / SUBJECT_TOKENS, np.frombuffer(self._subject_tokens, dtype=np.int32))
        np.save(self.folder / SUBJECT_OFFSETS, np.frombuffer(self._subject_offsets, np.int64))
        documents = {"documents": self._subject_documents, "inexact": self._inexact_subjects}
        (self.folder / SUBJECT_DOCUMENTS).write_text(json.dumps(documents, ensure_ascii=False))

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()


@dataclass(frozen=True)
class SentenceTokens:
    """A segment's sentence token arrays, memory-mapped."""

    tokens: np.ndarray  # int32, every sentence's syllable ids
    offsets: np.ndarray  # int64, (sentences + 1,)
    folded_ids: np.ndarray  # int32, per vocabulary id
    inexact_rows: frozenset[int]
    # Documents' subjects; None for a segment built before they were stored.
    subjects: SubjectTokens | None = None

    @classmethod
    def load(cls, folder: Path, sentences: int) -> SentenceTokens | None:
        """None when the segment was built without them (it is read the old way); a
        ValueError when they do not fit its sentences."""
        if not all((folder / name).is_file() for name in FILES):
            return None
        size = (folder / TOKENS).stat().st_size
        tokens_ = (
            np.memmap(folder / TOKENS, dtype="<i4", mode="r").view(np.ndarray)
            if size
            else np.zeros(0, np.int32)
        )
        offsets = np.load(folder / TOKEN_OFFSETS, mmap_mode="r").view(np.ndarray)
        if len(offsets) != sentences + 1 or int(offsets[-1]) != len(tokens_):
            raise ValueError("sentence tokens do not match the sentences")
        return cls(
            tokens_,
            offsets,
            np.load(folder / FOLDED_IDS),
            frozenset(np.load(folder / INEXACT_ROWS).tolist()),
            SubjectTokens.load(folder),
        )

    def token_ids(self, first: int, last: int, folded: bool) -> np.ndarray:
        """The syllable ids of sentences [first, last) of the segment, back to back (their
        folded twins' ids for a question typed without diacritics)."""
        ids = self.tokens[int(self.offsets[first]) : int(self.offsets[last])]
        return self.folded_ids[ids] if folded else ids

    def of_sentence_ranges(
        self, first: np.ndarray, last: np.ndarray, folded: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """token_ids of several ranges of sentences [first[i], last[i]) at once, back to back,
        and every sentence's length in tokens: a few array operations for all of a
        question's candidates instead of a few per candidate."""
        sentences = concatenated_ranges(first, last)
        lengths = self.offsets[sentences + 1] - self.offsets[sentences]
        ids = self.tokens[concatenated_ranges(self.offsets[first], self.offsets[last])]
        return (self.folded_ids[ids] if folded else ids), lengths


def concatenated_ranges(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """np.concatenate([np.arange(a, b) for a, b in zip(first, last)]), as int64."""
    counts = np.asarray(last, dtype=np.int64) - np.asarray(first, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    # Each range's first index, minus where it starts in the output.
    shift = np.asarray(first, dtype=np.int64) - (np.cumsum(counts) - counts)
    return np.arange(total, dtype=np.int64) + np.repeat(shift, counts)


@dataclass(frozen=True)
class SubjectTokens:
    """A segment's documents' subject syllable ids (exact documents only)."""

    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64, (documents + 1,)
    documents: dict[str, int]  # doc id -> its place in offsets

    @classmethod
    def load(cls, folder: Path) -> SubjectTokens | None:
        """None when the segment was built without them; a ValueError when they do not
        fit together."""
        if not all((folder / name).is_file() for name in SUBJECT_FILES):
            return None
        tokens_ = np.load(folder / SUBJECT_TOKENS)
        offsets = np.load(folder / SUBJECT_OFFSETS)
        listed = json.loads((folder / SUBJECT_DOCUMENTS).read_text(encoding="utf-8"))
        order = listed["documents"]
        if len(offsets) != len(order) + 1 or int(offsets[-1]) != len(tokens_):
            raise ValueError("subject tokens do not match their documents")
        inexact = set(listed["inexact"])
        return cls(tokens_, offsets, {d: i for i, d in enumerate(order) if d not in inexact})

    def token_ids(self, doc_id: str, folded_ids: np.ndarray, folded: bool) -> np.ndarray | None:
        """The subject's syllable ids (their folded twins' for a question typed without
        diacritics); None for a document it cannot describe exactly."""
        found, ids, _ = self.of_documents([doc_id], folded_ids, folded)
        return ids if len(found) else None

    def of_documents(
        self, doc_ids: Sequence[str], folded_ids: np.ndarray, folded: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """token_ids of several documents at once: which of ``doc_ids`` it describes exactly
        (their positions), their subjects' ids back to back and each subject's length."""
        at = [self.documents.get(d) for d in doc_ids]
        positions = np.array([i for i, a in enumerate(at) if a is not None], dtype=np.int64)
        places = np.array([a for a in at if a is not None], dtype=np.int64)
        first, last = self.offsets[places], self.offsets[places + 1]
        ids = self.tokens[concatenated_ranges(first, last)]
        return positions, (folded_ids[ids] if folded else ids), last - first


@dataclass(frozen=True)
class TokenMatches:
    """Some passages' sentences as tokens matched against a question's terms (columns)."""

    positions: np.ndarray  # which of the rows asked about these passages are
    matches: np.ndarray  # (tokens, terms) bool: token k is term j
    sentence_starts: np.ndarray  # (sentences,): each sentence's first token in matches
    passage_sentences: np.ndarray  # (passages + 1,): each passage's first sentence, and the end

    @classmethod
    def of_arrays(
        cls,
        positions: np.ndarray,
        token_ids: np.ndarray,
        sentence_lengths: np.ndarray,
        passage_sentence_counts: np.ndarray,
        term_ids: np.ndarray,
    ) -> TokenMatches:
        """From the passages' token ids back to back, every sentence's length in tokens and
        each passage's number of sentences."""
        starts = np.zeros(len(sentence_lengths), dtype=np.int64)
        np.cumsum(sentence_lengths[:-1], out=starts[1:])
        passage_sentences = np.zeros(len(passage_sentence_counts) + 1, dtype=np.int64)
        np.cumsum(passage_sentence_counts, out=passage_sentences[1:])
        return cls(positions, token_ids[:, None] == term_ids[None, :], starts, passage_sentences)

    def sentence_presence(self) -> np.ndarray:
        """Per sentence, which terms it holds: (sentences, terms) bool."""
        return _reduce_any(self.matches, self.sentence_starts, len(self.matches))

    def per_passage_any(self, per_sentence: np.ndarray) -> np.ndarray:
        """Per passage, the OR of a per-sentence bool array (1-D or 2-D)."""
        return _reduce_any(per_sentence, self.passage_sentences[:-1], len(per_sentence))

    def per_passage_max(self, per_sentence: np.ndarray) -> np.ndarray:
        """Per passage, the max of a per-sentence float array (0.0 for one without)."""
        starts, ends = self.passage_sentences[:-1], self.passage_sentences[1:]
        out = np.zeros(len(starts))
        filled = ends > starts
        if filled.any():
            out[filled] = np.maximum.reduceat(per_sentence, starts[filled])
        return out

    def adjacent(self, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        """Per passage and (a, b) pair of term columns: True when one of its sentences holds
        term a directly followed by term b (a syllable bigram of a sentence)."""
        out = np.zeros((len(self.passage_sentences) - 1, len(pairs)), dtype=bool)
        n = len(self.matches)
        if n < 2 or not pairs:
            return out
        within = np.ones(n - 1, dtype=bool)  # token k and k + 1 share a sentence
        inner = self.sentence_starts[(self.sentence_starts > 0) & (self.sentence_starts < n)]
        within[inner - 1] = False
        # Each passage's first sentence starts at its first token: the token starts of the
        # passages, for finding whose token a hit is.
        first_tokens = np.append(self.sentence_starts, n)[self.passage_sentences[:-1]]
        for j, (a, b) in enumerate(pairs):
            hits = np.flatnonzero(self.matches[:-1, a] & self.matches[1:, b] & within)
            if len(hits):
                out[np.searchsorted(first_tokens, hits, "right") - 1, j] = True
        return out


def _reduce_any(values: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """OR of values[starts[i]:starts[i + 1]] (the last to ``length``) per i; False for an
    empty range (reduceat would read one element there)."""
    out = np.zeros((len(starts), *values.shape[1:]), dtype=bool)
    if not len(starts):
        return out
    ends = np.append(starts[1:], length)
    filled = ends > starts
    if filled.any():
        out[filled] = np.logical_or.reduceat(values, starts[filled], axis=0)
    return out
