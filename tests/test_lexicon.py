"""The general-language prior on term weights, and how BM25 uses it."""

import pytest

from qabot import lexicon
from qabot.index.bm25 import BM25Index


def test_common_words_weigh_less_than_rare_ones():
    common = [lexicon.prior((w,)) for w in ("có", "được", "các", "và")]
    assert max(common) < lexicon.prior(("nạp",)) < lexicon.prior(("messi",))
    assert lexicon.prior(("đảng", "viên")) < lexicon.prior(("kết", "nạp"))
    # A word the list does not know (a rare name, a code) keeps its full weight.
    assert lexicon.prior(("qzxv",)) == 1.0
    assert all(0.0 < p <= 1.0 for p in common)


def test_a_question_typed_without_accents_gets_the_same_kind_of_weights():
    assert lexicon.prior(("duoc",), folded=True) == pytest.approx(lexicon.prior(("được",)))
    assert lexicon.prior(("ket", "nap"), folded=True) == pytest.approx(
        lexicon.prior(("kết", "nạp")), rel=0.05
    )
    assert lexicon.prior(("duoc",), folded=True) < lexicon.prior(("nap",), folded=True)


def test_bm25_weighs_terms_by_idf_and_prior():
    # "được" and "kết nạp" occur in the same passages: only the prior tells them apart.
    texts = [
        "Năm nay được kết nạp thêm đảng viên mới.",
        "Chi bộ được kết nạp quần chúng ưu tú.",
        "Hội nghị sơ kết công tác quý III.",
        "Công đoàn tổ chức hội thao cho công nhân.",
    ]
    index = BM25Index.build(texts)
    idf = {t: index.idf[i] for t, i in index.vocabulary.items()}
    weight = {t: index.term_weight[i] for t, i in index.vocabulary.items()}
    assert idf["được"] == idf["nạp"]  # the corpus alone cannot tell them apart
    assert weight["được"] < weight["nạp"]
    assert weight["~duoc"] < weight["~nap"]
    question = index.term_ids(["được", "nạp"])
    scores = index.scores(question)
    assert scores[0] > 0 and scores[2] == 0
    only_common = index.scores(index.term_ids(["được"]))
    only_rare = index.scores(index.term_ids(["nạp"]))
    assert only_common[0] < only_rare[0]
