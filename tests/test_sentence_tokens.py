"""Sentence tokens and passage periods stored at build time (qabot.index.sentence_tokens,
qabot.index.passage_periods): search reads them instead of tokenising candidates' text,
and must compute exactly what reading the text computes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from qabot.index import open_index
from qabot.index.passage_periods import PassagePeriods, PeriodWriter
from qabot.index.sentence_tokens import (
    SentenceTokens,
    SentenceTokenWriter,
    TokenMatches,
    concatenated_ranges,
)
from qabot.period import passage_periods
from qabot.search import Searcher
from qabot.terms import FOLDED_PREFIX
from qabot.text import fold, strip_marks, tokens

from .conftest import DEV_SEEDS


def _questions() -> list[str]:
    questions = [json.loads(line)["q"] for line in DEV_SEEDS.read_text().splitlines() if line]
    return questions + [strip_marks(q) for q in questions]


def test_features_from_stored_tokens_and_periods_equal_reading_the_text(reports_index, embedder):
    """Every feature of every candidate, bit for bit, with the stored arrays and with a
    segment built before them (its text tokenised and its periods read at question time)."""
    stored = Searcher(open_index(reports_index), embedder)
    assert all(s.tokens is not None and s.periods is not None for s in stored.index.segments)
    from_text = Searcher(open_index(reports_index), embedder)
    for segment in from_text.index.segments:
        segment.tokens = None
        segment.periods = None
    # Every other passage and report subject read from its text, the rest from tokens.
    mixed = Searcher(open_index(reports_index), embedder)
    for segment in mixed.index.segments:
        every_other = frozenset(range(0, len(segment.passages), 2))
        subjects = segment.tokens.subjects
        some = dict(list(subjects.documents.items())[::2])
        segment.tokens = replace(
            segment.tokens, inexact_rows=every_other, subjects=replace(subjects, documents=some)
        )
    for question in _questions():
        expected = from_text.candidates(question)
        for searcher in (stored, mixed):
            found = searcher.candidates(question)
            assert np.array_equal(found.rows, expected.rows), question
            assert np.array_equal(found.features, expected.features), question
        assert [(h.row, h.score) for h in stored.search(question, 5).hits] == [
            (h.row, h.score) for h in from_text.search(question, 5).hits
        ], question


def test_stored_tokens_spell_every_sentence(reports_index):
    index = open_index(reports_index)
    (segment,) = index.segments
    terms = {i: t for t, i in segment.bm25.vocabulary.items()}
    checked = 0
    for row in range(len(index.passages)):
        text = index.passages[row].text
        lo, hi = int(segment.sentence_offsets[row]), int(segment.sentence_offsets[row + 1])
        for sentence, (start, end) in enumerate(index.sentence_spans_of(row).tolist(), lo):
            exact = segment.tokens.token_ids(sentence, sentence + 1, folded=False)
            folded = segment.tokens.token_ids(sentence, sentence + 1, folded=True)
            assert [terms[i] for i in exact.tolist()] == tokens(text[start:end])
            assert [terms[i] for i in folded.tolist()] == [
                FOLDED_PREFIX + t for t in tokens(fold(text[start:end]))
            ]
            checked += 1
        assert hi - lo == len(index.sentence_spans_of(row))
    assert checked > 150  # every sentence of the sample reports
    assert not segment.tokens.inexact_rows


def test_stored_subject_tokens_spell_every_report_subject(reports_index):
    index = open_index(reports_index)
    (segment,) = index.segments
    terms = {i: t for t, i in segment.bm25.vocabulary.items()}
    subjects = segment.tokens.subjects
    assert sorted(subjects.documents) == sorted(d.doc_id for d in index.documents)
    for document in index.documents:
        exact = subjects.token_ids(document.doc_id, segment.tokens.folded_ids, folded=False)
        folded = subjects.token_ids(document.doc_id, segment.tokens.folded_ids, folded=True)
        assert len(exact) > 20  # a title, a lead and names
        assert [terms[i] for i in exact.tolist()] == tokens(document.subject)
        assert [terms[i] for i in folded.tolist()] == [
            FOLDED_PREFIX + t for t in tokens(fold(document.subject))
        ]


def test_a_subject_with_a_syllable_outside_the_vocabulary_is_read_from_its_text(tmp_path):
    vocabulary = {"đảng": 0, "viên": 1, "~dang": 2, "~vien": 3}
    writer = SentenceTokenWriter(tmp_path)
    writer.add("Đảng viên.", [(0, 10)], vocabulary)
    writer.add_subject("a.txt", "Đảng viên", vocabulary)
    writer.add_subject("b.txt", "Đảng ủy", vocabulary)  # "ủy" has no id
    writer.add_subject("c.txt", "", vocabulary)
    writer.close(4)
    stored = SentenceTokens.load(tmp_path, sentences=1)
    subjects = stored.subjects
    assert set(subjects.documents) == {"a.txt", "c.txt"}
    assert subjects.token_ids("a.txt", stored.folded_ids, folded=True).tolist() == [2, 3]
    assert subjects.token_ids("b.txt", stored.folded_ids, folded=False) is None
    assert subjects.token_ids("c.txt", stored.folded_ids, folded=False).tolist() == []
    (tmp_path / "subject_token_offsets.npy").unlink()
    assert SentenceTokens.load(tmp_path, sentences=1).subjects is None  # built before them
    np.save(tmp_path / "subject_token_offsets.npy", np.array([0, 2], dtype=np.int64))
    with pytest.raises(ValueError):
        SentenceTokens.load(tmp_path, sentences=1)  # three documents listed, one offset pair


@pytest.mark.parametrize("folded", [False, True])
def test_subjects_of_many_documents_are_each_documents_own(reports_index, folded):
    index = open_index(reports_index)
    segment = index.segments[0]
    tokens = segment.tokens
    doc_ids = [d.doc_id for d in segment.documents]
    asked = [*doc_ids[::-1], "khong-co.txt", doc_ids[0]]  # any order, unknown, repeated
    found, ids, lengths = tokens.subjects.of_documents(asked, tokens.folded_ids, folded)
    assert found.tolist() == [i for i, d in enumerate(asked) if d in tokens.subjects.documents]
    one_by_one = [tokens.subjects.token_ids(asked[i], tokens.folded_ids, folded) for i in found]
    assert lengths.tolist() == [len(x) for x in one_by_one]
    assert ids.tolist() == [t for x in one_by_one for t in x.tolist()]
    assert sum(lengths) > 0


def test_stored_periods_are_the_periods_of_the_text(reports_index):
    index = open_index(reports_index)
    named = 0
    for row in range(len(index.passages)):
        passage = index.passages[row]
        expected = passage_periods(passage.text, index.document(passage.doc_id).date)
        assert index.stored_periods(row) == expected
        named += bool(expected)
    assert named > 10  # the reports name years and "6 tháng đầu năm"


def test_period_matches_are_each_passages_own(reports_index):
    """Whether a passage names a period and whether one overlaps an asked period, for a
    question's rows at once (in any order, repeated), as its stored periods say one by one."""
    from qabot.period import overlaps

    index = open_index(reports_index)
    rows = np.array([*range(len(index.passages) - 1, -1, -1), 0, 0], dtype=np.int64)
    years = sorted({p for r in range(len(index.passages)) for p in index.stored_periods(r)})
    assert len(years) > 3
    checked = 0
    for period in [years[0], years[len(years) // 2], years[-1], (0, 1)]:
        stored, named, overlapping = index.period_matches(rows, period)
        assert stored.all()
        for i, row in enumerate(rows.tolist()):
            periods = index.stored_periods(row)
            assert named[i] == bool(periods)
            assert overlapping[i] == any(overlaps(p, period) for p in periods)
            checked += bool(overlapping[i])
    assert checked > 5


def test_a_passage_with_a_syllable_outside_the_vocabulary_is_read_from_its_text(tmp_path):
    writer = SentenceTokenWriter(tmp_path)
    writer.add(
        "Đảng viên mới.",
        [(0, 14)],
        {"đảng": 0, "viên": 1, "mới": 2, "~dang": 3, "~vien": 4, "~moi": 5},
    )
    writer.add("Đảng ủy.", [(0, 8)], {"đảng": 0, "~dang": 3})  # "ủy" has no id
    writer.close(6)
    stored = SentenceTokens.load(tmp_path, sentences=2)
    assert stored.inexact_rows == frozenset({1})
    assert stored.token_ids(0, 1, folded=False).tolist() == [0, 1, 2]
    assert stored.token_ids(0, 1, folded=True).tolist() == [3, 4, 5]
    with pytest.raises(ValueError):
        SentenceTokens.load(tmp_path, sentences=3)  # files of another segment


def test_periods_of_another_grammar_are_not_used(tmp_path, monkeypatch):
    writer = PeriodWriter()
    writer.add("Năm 2023, 6 tháng đầu năm kết nạp 10 đảng viên.", "2023-07-01")
    writer.add("Không có mốc thời gian.", None)
    writer.save(tmp_path)
    periods = PassagePeriods.load(tmp_path, passages=2)
    assert periods.of(0) == passage_periods(
        "Năm 2023, 6 tháng đầu năm kết nạp 10 đảng viên.", "2023-07-01"
    )
    assert periods.of(0) and periods.of(1) == ()
    monkeypatch.setattr("qabot.index.passage_periods.GRAMMAR_VERSION", 999)
    assert PassagePeriods.load(tmp_path, passages=2) is None


def _matches(sentences: list[list[list[int]]], terms: int) -> TokenMatches:
    """Passages of sentences, each sentence a list of term columns (-1: another word)."""
    ids = [np.array([t for s in p for t in s], dtype=np.int32) for p in sentences]
    lengths = [np.array([len(s) for s in p], dtype=np.int64) for p in sentences]
    return TokenMatches.of_arrays(
        np.arange(len(sentences), dtype=np.int64),
        np.concatenate(ids),
        np.concatenate(lengths),
        np.array([len(x) for x in lengths], dtype=np.int64),
        np.arange(terms, dtype=np.int32),
    )


def test_token_matches_keep_pairs_inside_a_sentence_and_passages_apart():
    group = _matches([[[0], [1, 2]], [], [[2], [], [0, 1]]], terms=3)
    presence = group.sentence_presence()
    assert presence.tolist() == [
        [True, False, False],
        [False, True, True],
        [False, False, True],
        [False] * 3,
        [True, True, False],
    ]
    # 0 then 1 across a sentence end (passage 0) is no bigram; inside one (passage 2) it is.
    assert group.adjacent([(0, 1), (1, 2), (2, 0)]).tolist() == [
        [False, True, False],
        [False, False, False],
        [True, False, False],
    ]
    assert group.per_passage_any(presence).tolist() == [
        [True, True, True],
        [False] * 3,
        [True, True, True],
    ]
    assert group.per_passage_max(np.array([1.0, 3.0, 2.0, 0.0, 5.0])).tolist() == [3.0, 0.0, 5.0]


def test_concatenated_ranges_are_the_ranges_back_to_back():
    first, last = np.array([3, 7, 7, 0, 10]), np.array([5, 7, 9, 2, 11])
    assert concatenated_ranges(first, last).tolist() == [3, 4, 7, 8, 0, 1, 10]
    assert concatenated_ranges(np.array([4]), np.array([4])).tolist() == []


def test_sentence_matches_of_rows_in_any_order_are_each_rows_own(reports_index):
    """All of a question's candidates matched at once (per segment) give each passage the
    tokens of its own sentences, in whatever order and with repeats the rows come."""
    index = open_index(reports_index)
    rows = [5, 0, 17, 5, len(index.passages) - 1, 3]
    terms = ("đảng", "viên", "~dang", "khu", "công", "nghiệp")
    for folded in (False, True):
        [group] = index.sentence_matches(rows, terms, folded)
        one_by_one = [index.sentence_matches([row], terms, folded)[0] for row in rows]
        assert group.positions.tolist() == list(range(len(rows)))
        presence = group.sentence_presence()
        ends = group.passage_sentences
        for k, alone in enumerate(one_by_one):
            assert np.array_equal(presence[ends[k] : ends[k + 1]], alone.sentence_presence())
            assert np.array_equal(
                group.adjacent([(0, 1), (3, 4)])[k], alone.adjacent([(0, 1), (3, 4)])[0]
            )
