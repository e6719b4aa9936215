"""Retrieval quality on the development questions, by the protocol of shared/eval/README.md.

The floor is the issue's table for dev_seeds: every answerable question has an answering
passage in the first five, and every unanswerable one gets "not found".
"""

from qabot import evaluation

from .conftest import DEV_SEEDS


def test_dev_seeds_meet_the_floor(service):
    items = evaluation.load_set(DEV_SEEDS).items
    results = evaluation.run(items, lambda question: service.ask(question, 10))
    report = evaluation.metrics(results)
    misses = [r.item.id for r in results if r.answerable and (r.first_hit or 99) > 5]
    assert report["hit@5"] == 1.0, f"answering passage not in the first five for {misses}"
    assert report["not_found"] == 1.0
    # At or below the measured numbers (hit@1 0.93, answer@1 0.86, found 0.97): the issue asks
    # answer@1 >= 0.85 on this set.
    assert report["hit@1"] >= 0.9
    assert report["answer@1"] >= 0.85
    assert report["found"] >= 0.95


def test_unanswerable_questions_cite_nothing_with_confidence(service):
    for question in (
        "Lãi suất tiết kiệm kỳ hạn 12 tháng của các ngân hàng là bao nhiêu?",
        "Giá vàng hôm nay bao nhiêu một lượng?",
        "Ai vô địch World Cup năm 2018?",
    ):
        answer = service.ask(question, 5)
        assert answer.found is False, question
        assert answer.answer == ""
        assert all(p.score < 0.5 for p in answer.passages)


def test_questions_without_diacritics_find_the_same_passage(service):
    accented = service.ask("Đoàn Thanh niên Khối doanh nghiệp có bao nhiêu tổ chức cơ sở?", 3)
    plain = service.ask("doan thanh nien khoi doanh nghiep co bao nhieu to chuc co so", 3)
    assert plain.found
    assert plain.passages[0].doc_id == accented.passages[0].doc_id
    assert plain.passages[0].paragraph == accented.passages[0].paragraph


def test_dev_seeds_typed_without_diacritics_answer_as_well(service):
    """The issue's bar for questions typed without marks: folded hit@1 and found within 3
    points of the accented questions, answer@1 within 6 (measured: equal on this set)."""
    items = evaluation.load_set(DEV_SEEDS).items
    ask = lambda question: service.ask(question, 10)  # noqa: E731
    accented = evaluation.metrics(evaluation.run(items, ask))
    folded_results = evaluation.run(evaluation.fold_items(items), ask)
    folded = evaluation.metrics(folded_results)
    assert folded["hit@1"] >= accented["hit@1"] - 0.03, (accented, folded)
    assert folded["answer@1"] >= accented["answer@1"] - 0.06, (accented, folded)
    assert folded["found"] >= accented["found"] - 0.03, (accented, folded)
    assert folded["not_found"] == 1.0
    restored = [r for r in folded_results if r.answer.interpreted_question != r.item.question]
    assert len(restored) >= 25  # the folded questions were searched with their marks back


def test_search_ranks_the_dev_questions_as_reading_every_candidate(reports_index, embedder):
    """Search reads sentences only where they can change the top (Searcher.search): on the
    dev questions, typed with and without diacritics, its top five and their scores are
    what scoring every candidate with every feature gives."""
    import json

    from qabot.index import open_index
    from qabot.search import FEATURES, TEXT_FEATURES, Searcher
    from qabot.text import strip_marks

    searcher = Searcher(open_index(reports_index), embedder)
    questions = [json.loads(line)["q"] for line in DEV_SEEDS.read_text().splitlines() if line]
    for question in questions + [strip_marks(q) for q in questions]:
        result = searcher.search(question, 5)
        candidates = searcher.candidates(question)
        scores = searcher.models.ranker.score(candidates.features)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:5]
        expected = [(int(candidates.rows[i]), float(scores[i])) for i in order]
        assert [(h.row, h.score) for h in result.hits] == expected, question
        assert result.read <= result.candidates
        # Each feature is at most what was known before reading (its exact value where
        # the stored sentence tokens gave it) plus its bound.
        first = searcher._first_columns(question, ())
        for name in TEXT_FEATURES:
            column = candidates.features[:, FEATURES.index(name)]
            assert all(column <= first.columns[name] + first.bounds[name] + 1e-6), (question, name)
