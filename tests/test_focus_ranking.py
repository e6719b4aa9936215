"""The answer focus in ranking (issue 14): a passage that puts the asked kind of thing next
to the question's focus words ("bao nhiêu [đảng viên]" -> "1.240 đảng viên") outranks one
that repeats the question's words without it. Made-up reports, the real embedder, the
shipped (fitted) model."""

from __future__ import annotations

import numpy as np
import pytest

from qabot import search
from qabot.index import build_index, open_index
from qabot.query import analyse

DATE = "2022-05-10"
REPORTS = {
    "my-phuoc-gioi-thieu.md": (
        "Đảng bộ Khu công nghiệp Mỹ Phước",
        "Đảng bộ Khu công nghiệp Mỹ Phước là nơi sinh hoạt của đảng viên trong các doanh "
        "nghiệp của Khu công nghiệp Mỹ Phước. Công tác phát triển đảng viên, quản lý đảng "
        "viên luôn được Đảng bộ Khu công nghiệp Mỹ Phước quan tâm lãnh đạo.",
    ),
    "my-phuoc-so-ket.md": (
        "Đảng bộ Khu công nghiệp Mỹ Phước sơ kết công tác xây dựng Đảng",
        "Sau hội nghị, toàn Đảng bộ có 1.240 đảng viên sinh hoạt tại 38 chi bộ trực thuộc.",
    ),
}
QUESTION = "Đảng bộ Khu công nghiệp Mỹ Phước có bao nhiêu đảng viên?"


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("focus-ranking-docs")
    for name, (title, body) in REPORTS.items():
        (docs / name).write_text(f'---\ntitle: "{title}"\ndate: {DATE}\n---\n{body}\n', "utf-8")
    index_dir = tmp_path_factory.mktemp("focus-ranking-index")
    build_index(docs, index_dir, embedder)
    return search.Searcher(open_index(index_dir), embedder)


def test_the_focus_column_marks_the_number_next_to_the_asked_words(searcher):
    index = searcher.index
    rows = np.arange(len(index.passages))
    columns = searcher.structure_columns(analyse(QUESTION, index.restorer), rows)
    by_doc = {index.passages[r].doc_id: columns["focus"][r] for r in rows.tolist()}
    assert by_doc == {"my-phuoc-gioi-thieu.md": 0.0, "my-phuoc-so-ket.md": 1.0}
    # A question that asks for no kind of thing has no focus.
    other = searcher.structure_columns(analyse("Đảng bộ Mỹ Phước", index.restorer), rows)
    assert other["focus"].tolist() == [0.0] * len(rows)


def test_the_passage_with_the_asked_number_ranks_first(searcher):
    top = searcher.search(QUESTION, 1).hits[0].passage
    assert top.doc_id == "my-phuoc-so-ket.md" and "1.240" in top.text
    assert searcher.models.ranker.weights[search.FEATURES.index("focus")] > 0


def test_the_focus_column_equals_reading_every_sentence(service) -> None:
    # The column skips sentences without a focus word; on the sample reports, for questions
    # of each ranked kind, typed with and without diacritics, it equals reading them all.
    from qabot.focus import focus_match, question_focus
    from qabot.text import strip_marks

    searcher = service._require()
    index = searcher.index
    questions = [
        "Đảng bộ có bao nhiêu đảng viên?",
        "Có bao nhiêu chi bộ trực thuộc Đảng ủy Khu kinh tế?",
        "Ai là Bí thư Đảng ủy Khối doanh nghiệp?",
        "Hội nghị sơ kết giữa nhiệm kỳ diễn ra khi nào?",
        "Năm 2023 có bao nhiêu doanh nghiệp?",
    ]
    checked = 0
    for question in questions + [strip_marks(q) for q in questions]:
        query, rows = searcher.candidate_rows(question)
        passages = [index.passages[int(r)] for r in rows]
        column = searcher.focus_column(query, rows, passages)
        focus = question_focus(query.interpreted, query.folded, query.answer_type)
        for i, row in enumerate(rows.tolist()):
            spans, _ = index.sentences_of(row)
            reference = (
                max(
                    (
                        focus_match(focus, passages[i].text[s:e], query.folded)
                        for s, e in spans.tolist()
                    ),
                    default=0.0,
                )
                if focus.kind in search.RANKING_FOCUS_KINDS and focus.words
                else 0.0
            )
            assert column[i] == reference, (question, row)
            checked += reference > 0
    assert checked >= 5  # the questions do reach sentences that match
