"""Diacritic restoration of questions (qabot.restore), from a small corpus built here."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter

import numpy as np
import pytest

from qabot import restore
from qabot.index import open_index
from qabot.index.layout import VERSIONS, current_version
from qabot.query import analyse
from qabot.restore import FILE, Restorer, RestoreStats
from qabot.text import fold, token_matches

from .conftest import REPORTS

CORPUS = [
    "Đảng ủy Khu kinh tế Tràng Duệ đã kết nạp 25 đảng viên mới trong năm 2023.",
    "Đồng chí Đỗ Quang Khoa, Bí thư Đảng ủy, chủ trì hội nghị sơ kết công tác xây dựng Đảng.",
    "Ban Quản lý KCN Tràng Duệ phối hợp với UBND TP.HCM tổ chức hội nghị đối thoại doanh nghiệp.",
    "Công đoàn các khu công nghiệp đã tổ chức thăm hỏi, tặng quà công nhân lao động.",
    "Tổng số đảng viên của Đảng bộ là 1.062 đồng chí, sinh hoạt tại 48 chi bộ cơ sở.",
]


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    return Restorer.from_texts(CORPUS)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (
            "dang uy khu kinh te trang due ket nap bao nhieu dang vien moi",
            "đảng ủy khu kinh tế tràng duệ kết nạp bao nhiêu đảng viên mới",
        ),
        (
            "Dong chi Do Quang Khoa chu tri hoi nghi nao?",
            "Đồng chí Đỗ Quang Khoa chủ trì hội nghị nào?",
        ),
        (
            "Cong doan tang qua cong nhan lao dong khi nao?",
            "Công đoàn tặng quà công nhân lao động khi nào?",
        ),
    ],
)
def test_phrases_of_the_corpus_are_restored_with_case_and_punctuation(restorer, typed, expected):
    assert restorer.restore(typed) == expected


def test_mixed_accents_keep_what_was_typed_and_restore_the_rest(restorer):
    typed = "Đảng ủy Khu kinh te Trang Due kết nạp bao nhieu đảng viên mới?"
    assert restorer.restore(typed) == (
        "Đảng ủy Khu kinh tế Tràng Duệ kết nạp bao nhiêu đảng viên mới?"
    )
    # A syllable typed with a mark stays, even where the corpus would choose another.
    assert restorer.restore("Đảng ủy đa ket nap bao nhieu dang vien") == (
        "Đảng ủy đa kết nạp bao nhiêu đảng viên"
    )


def test_numbers_codes_and_abbreviations_are_left_alone(restorer):
    typed = "Ban Quan ly KCN phoi hop voi UBND TP.HCM nam 2023 co 1.062 dang vien, PUBG va GieSu?"
    restored = restorer.restore(typed)
    assert restored == (
        "Ban Quản lý KCN phối hợp với UBND TP.HCM năm 2023 có 1.062 đảng viên, PUBG và GieSu?"
    )


def test_accented_and_foreign_questions_are_untouched(restorer):
    for question in (
        "Đảng ủy Khu kinh tế Tràng Duệ có bao nhiêu chi bộ cơ sở?",
        "Ban Quản lý các khu công nghiệp tổ chức hội nghị đối thoại với ai?",
        "What did the Party Committee of the Trang Due Economic Zone do in 2023?",
        "",
        "2023",
    ):
        assert restorer.restore(question) == question


def test_statistics_survive_saving_and_loading(tmp_path, restorer):
    restorer.stats.save(tmp_path)
    loaded = RestoreStats.load(tmp_path)
    assert loaded is not None
    assert loaded.syllables == restorer.stats.syllables
    assert (loaded.bigram_keys == restorer.stats.bigram_keys).all()
    assert (loaded.bigram_counts == restorer.stats.bigram_counts).all()
    typed = "dong chi do quang khoa chu tri hoi nghi"
    assert Restorer(loaded).restore(typed) == restorer.restore(typed)
    assert RestoreStats.load(tmp_path / "missing") is None


def test_analyse_searches_the_restored_question_and_keeps_the_typed_letters(restorer):
    query = analyse("dang uy Trang Due ket nap bao nhieu dang vien", restorer)
    assert query.text == "dang uy Trang Due ket nap bao nhieu dang vien"
    assert query.interpreted == "đảng ủy Tràng Duệ kết nạp bao nhiêu đảng viên"
    assert not query.folded
    assert "kết_nạp" in query.terms and "tràng_duệ" in query.terms
    assert query.answer_type == "number"
    # The folded letters typed stay searchable, so a wrong restoration loses no match.
    assert {"~ket_nap", "~trang_due", "~dang_vien"} <= set(query.variant_terms)
    assert analyse("Đảng ủy kết nạp bao nhiêu đảng viên?", restorer).interpreted == (
        "Đảng ủy kết nạp bao nhiêu đảng viên?"
    )


def test_index_versions_carry_the_statistics_and_old_versions_still_restore(index_copy):
    folder = index_copy / VERSIONS / current_version(index_copy)
    assert (folder / FILE).is_file()
    index = open_index(index_copy)
    typed = "dang uy khu kinh te hai phong co bao nhieu dang vien"
    expected = "đảng ủy khu kinh tế hải phòng có bao nhiêu đảng viên"
    assert index.restorer.restore(typed) == expected
    # A version written before restore.npz existed (so its manifest does not list it) builds
    # the statistics when loaded.
    (folder / FILE).unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"][FILE]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert open_index(index_copy).restorer.restore(typed) == expected
    shutil.rmtree(folder)


@pytest.mark.parametrize("block", [restore.COUNT_BLOCK, 500])
def test_counts_streamed_in_blocks_are_the_counts_of_every_text(monkeypatch, block):
    """from_texts counts pairs by integer keys in blocks (memory bounded by the distinct
    pairs); the result is what counting every word and pair of every text gives."""
    monkeypatch.setattr(restore, "COUNT_BLOCK", block)
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.iterdir())]
    words: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    phrases = "\n".join(list(restore.QUESTION_FRAMES) * restore.PHRASE_COUNT)
    for text in [*texts, phrases]:
        for line in text.splitlines():
            line_words = restore._syllable_words(line)
            words.update(line_words)
            pairs.update(itertools.pairwise(line_words))
    stats = RestoreStats.from_texts(iter(texts))
    assert stats.syllables == tuple(sorted(words))
    assert stats.counts.tolist() == [words[s] for s in stats.syllables]
    size = len(stats.syllables)
    found = {
        (stats.syllables[k // size], stats.syllables[k % size]): int(c)
        for k, c in zip(stats.bigram_keys.tolist(), stats.bigram_counts.tolist(), strict=True)
    }
    assert found == dict(pairs)
    assert list(stats.bigram_keys) == sorted(stats.bigram_keys)


def test_a_corpus_that_repeats_itself_does_not_outweigh_a_plain_word():
    """A large corpus says the same things many times: "năm" is always followed by a
    number here. An unseen pair after it must still cost less than choosing a word the
    corpus never uses ("nam") as Witten-Bell alone would let it, with its unseen share
    shrinking as the counts grow (restore.UNIGRAM_SHARE)."""
    texts = [
        "Năm 2024 Đảng bộ có 1.062 đảng viên.",
        "Đảng ủy giữ vững vai trò lãnh đạo.",
    ] * 3_000 + ["Đồng chí được bầu giữ chức vụ Bí thư."]
    restorer = Restorer.from_texts(texts)
    assert restorer.restore("nam nay co bao nhieu dang vien").startswith("năm ")
    assert restorer.restore("ai giu chuc vu bi thu") == "ai giữ chức vụ bí thư"
    assert restorer.restore("nam 2024 co bao nhieu dang vien") == "năm 2024 có bao nhiêu đảng viên"


def test_question_frames_keep_their_weight_in_a_large_corpus():
    """Reports do not ask questions however many there are: "bao nhiêu" must not become
    "bảo nhiều" when the corpus says "bảo" and "nhiều" a hundred thousand times
    (restore.PHRASE_WORDS)."""
    texts = ["Công ty bảo đảm nhiều việc làm, bảo vệ quyền lợi cho nhiều công nhân."] * 8_000
    texts += ["Đảng bộ có 1.062 đảng viên."] * 50
    restorer = Restorer.from_texts(texts)
    assert restorer.stats.counts.sum() > 100_000
    assert restorer.restore("co bao nhieu dang vien") == "có bao nhiêu đảng viên"
    # The counts an index stores stay the corpus's own: the frames are weighed when read.
    assert restore.with_question_frames(restorer.stats).counts.sum() > restorer.stats.counts.sum()
    assert Restorer(restorer.stats).counted.counts.sum() == restorer.counted.counts.sum()


def _full_viterbi(restorer, lattice):
    """Reference: Viterbi over every unbroken run of the lattice, a transition a token."""
    chosen = [None] * len(lattice)
    start = 0
    while start < len(lattice):
        if lattice[start] is None:
            start += 1
            continue
        end = start
        while end < len(lattice) and lattice[end] is not None:
            end += 1
        restorer._viterbi(lattice, start, end, chosen)
        start = end
    return chosen


def test_decoding_only_the_stretches_with_a_choice_finds_the_full_viterbi_path(restorer):
    # A token with one candidate separates the two sides of a bigram chain, so decoding the
    # stretches between such tokens must choose exactly what a run-long Viterbi chooses.
    # Lattices of the corpus's own sentences, some words typed plain: their bigrams are
    # seen, so a fixed neighbour's transition decides between candidates.
    rng = np.random.default_rng(5)
    differs = 0
    for _ in range(200):
        sentence = CORPUS[int(rng.integers(len(CORPUS)))]
        lattice = []
        for match in token_matches(sentence):
            form = restore._word_form(match.group())
            choices = restorer.candidates.get(fold(form))
            if choices is not None and len(choices) > 1 and rng.random() < 0.5:
                bonus = np.zeros(len(choices))
                lattice.append((choices, bonus))
            elif form in restorer.ids:
                lattice.append((np.array([restorer.ids[form]]), np.zeros(1)))
            else:
                lattice.append(None)
        full = _full_viterbi(restorer, lattice)
        assert restorer._decode(lattice) == full
        alone = [
            int(e[0][np.argmax(restorer.log_unigram[e[0]])]) if e is not None else None
            for e in lattice
        ]
        differs += alone != full
    assert differs > 10  # the neighbours' transitions did decide


def test_remembered_transitions_restore_as_computed_ones_and_stay_bounded(monkeypatch):
    """Transitions are remembered per pair of candidate lists, at most TRANSITIONS_KEPT of
    them: questions restored from remembered ones read exactly as from a fresh restorer."""
    stats = RestoreStats.from_texts(p.read_text(encoding="utf-8") for p in REPORTS.glob("*.txt"))
    questions = [
        fold(line)
        for p in sorted(REPORTS.glob("*.txt"))
        for line in p.read_text(encoding="utf-8").splitlines()[:12]
        if 3 < len(line.split()) < 30
    ]
    fresh = [Restorer(stats).restore(q) for q in questions]  # a new restorer per question
    monkeypatch.setattr(restore, "TRANSITIONS_KEPT", 50)
    remembering = Restorer(stats)
    twice = [remembering.restore(q) for q in questions + questions]
    assert twice == fresh + fresh
    assert 0 < len(remembering.transitions) <= 50
    assert sum(a != fold(a) for a in fresh) > 10  # most were restored
