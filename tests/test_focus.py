"""Answer focus: the asked kind of thing and the question words it should stand next to."""

import math
import re
from pathlib import Path

import pytest

from qabot import focus as focus_module
from qabot.focus import Focus, focus_match, question_focus, year_match, years
from qabot.query import DATE, NUMBER, PERSON, PLACE
from qabot.text import fold


@pytest.mark.parametrize(
    ("question", "kind", "words"),
    [
        ("Đảng bộ Khu kinh tế có bao nhiêu đảng viên?", NUMBER, ("đảng", "viên")),
        ("Tổng số đảng viên doanh nghiệp là bao nhiêu?", NUMBER, ("viên", "doanh", "nghiệp")),
        ("Ai là Phó Bí thư Đảng ủy Khu kinh tế?", PERSON, ("phó", "bí", "thư")),
        ("Trưởng ban tổ chức là ai?", PERSON, ("ban", "tổ", "chức")),
        ("Đảng bộ được thành lập vào ngày nào?", DATE, ("thành", "lập")),
        ("Hội nghị tổ chức ở đâu?", PLACE, ("nghị", "tổ", "chức")),
        ("Phương châm của Đảng bộ là gì?", None, ()),
    ],
)
def test_question_focus_is_the_content_words_beside_the_question_word(question, kind, words):
    focus = question_focus(question)
    assert focus.kind == kind
    assert focus.words == words


def test_a_comma_ends_the_focus_phrase():
    # "bao nhiêu" has nothing after it; what comes before the comma is another clause.
    assert question_focus("Năm 2023, đã kết nạp bao nhiêu?").words == ("kết", "nạp")
    assert question_focus("Có bao nhiêu, nếu tính cả chi bộ?").words == ()


def test_folded_questions_keep_their_focus():
    question = "Đảng bộ Khu kinh tế có bao nhiêu đảng viên?"
    focus = question_focus(fold(question), folded=True, kind=NUMBER)
    assert focus == Focus(NUMBER, ("dang", "vien"))
    assert focus_match(focus, "đã kết nạp 175 đảng viên mới", folded=True) > 0.8


def test_a_number_next_to_the_focus_words_scores_above_a_number_elsewhere():
    focus = question_focus("Đảng bộ có bao nhiêu đảng viên?")
    adjacent = focus_match(focus, "Năm 2023 Đảng ủy đã kết nạp 175 đảng viên mới.")
    near = focus_match(focus, "Số đảng viên của Đảng bộ tăng lên 1.062 đồng chí.")
    unrelated = focus_match(focus, "Đảng bộ đã trải qua 3 giai đoạn phát triển.")
    assert adjacent > near > unrelated
    assert unrelated < 0.1  # "đảng" of "Đảng bộ" alone is weak evidence


def test_dates_and_years_are_not_the_number_asked_for():
    focus = question_focus("Có bao nhiêu đảng viên?")
    assert focus_match(focus, "Ngày 12/3/2024 đảng viên họp; năm 2023 đảng viên họp.") == 0.0
    assert focus_match(focus, "Tháng 3/2024 có 96 đảng viên.") > 0.8


def test_the_name_next_to_the_asked_title_scores():
    focus = question_focus("Ai là Phó Bí thư Đảng ủy?")
    named = focus_match(focus, "Đồng chí Trần Anh Tuấn - Phó Bí thư Đảng ủy tổng kết hội nghị.")
    unnamed = focus_match(focus, "Phó Bí thư Đảng ủy tổng kết hội nghị.")
    far = focus_match(
        focus,
        "Đồng chí Trần Anh Tuấn tổng kết các ý kiến của đại biểu về báo cáo và "
        "những kiến nghị gửi tới Phó Bí thư.",
    )
    assert named > 0.5
    assert unnamed == 0.0
    assert far < named


def test_a_date_next_to_the_asked_event_scores():
    focus = question_focus("Đảng bộ được thành lập vào ngày nào?")
    assert focus_match(focus, "Đảng bộ được thành lập ngày 28/01/2010.") > 0.7
    assert focus_match(focus, "Đảng bộ được thành lập theo quyết định của Thành ủy.") == 0.0


def test_no_focus_no_score():
    assert focus_match(question_focus("Phương châm là gì?"), "Năm 2023 có 175 đảng viên.") == 0.0
    assert focus_match(Focus(NUMBER, ()), "Năm 2023 có 175 đảng viên.") == 0.0


def test_the_asked_year_is_preferred_to_another_year():
    asked = years("Năm 2023 Đảng ủy thành lập được bao nhiêu tổ chức đảng?")
    assert asked == {"2023"}
    assert year_match(asked, "Năm 2023 Đảng ủy đã thành lập 9/9 tổ chức đảng.") == 1.0
    assert year_match(asked, "Chỉ tiêu năm 2024: thành lập 11 tổ chức đảng.") == -1.0
    assert year_match(asked, "Đảng ủy đã thành lập 11 tổ chức đảng.") == 0.0
    assert year_match(frozenset(), "Năm 2024 thành lập 11 tổ chức đảng.") == 0.0
    assert years("giai đoạn 2016 - 2020, tháng 6/2023, 12345") == {"2016", "2020", "2023"}


def test_asked_things_find_what_their_definition_finds_on_the_reports():
    """Dates and numbers are found by position (bisect over token starts) and a sentence
    without digits is not tokenised; both must find exactly what the plain definition
    does: a date is the tokens starting inside a DATE_PATTERN match, a number a token
    opening with a digit outside every date."""
    from qabot.focus import DATE_PATTERN, START, TEXT, _things, _tokens

    from .conftest import REPORTS

    sentences = [s for path in sorted(REPORTS.iterdir()) for s in path.read_text().split(".") if s]
    checked = 0
    for text in sentences:
        for folded in (False, True):
            sentence = fold(text) if folded else text
            tokens = _tokens(sentence, folded)
            dates = [m.span() for m in DATE_PATTERN.finditer(sentence)]
            inside = [[i for i, t in enumerate(tokens) if s <= t[START] < e] for s, e in dates]
            expected_dates = [(ix[0], ix[-1] + 1) for ix in inside if ix]
            in_date = {i for ix in inside for i in ix}
            expected_numbers = [
                (i, i + 1)
                for i, t in enumerate(tokens)
                if t[TEXT][0].isdigit() and i not in in_date
            ]
            assert list(_things(DATE, sentence, folded)) == expected_dates
            assert list(_things(NUMBER, sentence, folded)) == expected_numbers
            checked += bool(expected_dates) + bool(expected_numbers)
    assert checked > 100  # the reports hold plenty of both


def test_remembered_tokens_leave_the_garbage_collector_alone():
    """Thousands of sentences' tokens stay cached in a serving process; as exact tuples of
    strings, ints and bools the cyclic collector stops tracking them (a NamedTuple or a
    dataclass stays tracked, and full collections then paused questions by 250 ms)."""
    import gc

    from qabot.focus import _tokens

    remembered = _tokens("Đảng bộ kết nạp 175 đảng viên mới, tháng 3/2024.", False)
    gc.collect()
    assert len(remembered) >= 8
    assert not any(gc.is_tracked(token) for token in remembered)


def _tokens_one_by_one(text: str, folded: bool) -> tuple:
    """focus._tokens as first written: each token lowered (and folded) on its own."""
    found = []
    previous_end = 0
    for m in re.finditer(r"\d+(?:[.,]\d+)*|[^\W_]+", text):
        raw = m.group()
        form = fold(raw).lower() if folded else raw.lower()
        gap = text[previous_end : m.start()]
        broken = bool(found) and gap != " " and bool(focus_module._BREAK.search(gap))
        found.append((raw, form, m.start(), m.end(), broken))
        previous_end = m.end()
    return tuple(found)


@pytest.mark.parametrize("folded", [False, True])
def test_tokens_are_each_tokens_own_form(folded):
    """Forms sliced from the whole text lowered or folded at once are each token's own,
    also where lowering or folding changes the text's length."""
    reports = Path(__file__).resolve().parents[1] / "data" / "reports"
    lines = [
        line
        for report in sorted(reports.glob("*.txt"))
        for line in report.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    tricky = [
        "İstanbul và Đảng bộ - KCN: 1.062 đảng viên",
        "Đa\u0301ng viên (Ha\u0300 Nội) – năm 2023; “Bí thư”",
        "  hai  khoảng trắng -  và - gạch ",
    ]
    for text in [*lines, *tricky]:
        assert focus_module._tokens.__wrapped__(text, folded) == _tokens_one_by_one(text, folded)


def _focus_match_by_tokens(focus: Focus, text: str, folded: bool) -> float:
    """focus_match as defined on the whole tokenisation (focus._tokens): its things of the
    asked kind and its tokens' forms."""
    tokens = focus_module._tokens.__wrapped__(text, folded)
    start = focus_module.START
    dates = [m.span() for m in focus_module.DATE_PATTERN.finditer(text)]
    inside = [[i for i, t in enumerate(tokens) if s <= t[start] < e] for s, e in dates]
    if focus.kind == DATE:
        things = [(ix[0], ix[-1] + 1) for ix in inside if ix]
    elif focus.kind == NUMBER:
        in_date = {i for ix in inside for i in ix}
        things = [
            (i, i + 1)
            for i, t in enumerate(tokens)
            if t[focus_module.TEXT][0].isdigit() and i not in in_date
        ]
    else:
        things = list(focus_module._names(tokens))
    runs = focus_module._runs(focus.words, [t[focus_module.FORM] for t in tokens])
    best = 0.0
    for s, e in things:
        for a, b in runs:
            if a < e and s < b:
                continue
            gap = s - b if b <= s else a - e
            if gap < focus_module.FOCUS_WINDOW:
                share = (b - a) / len(focus.words)
                best = max(best, share * share * math.exp(-gap / focus_module.FOCUS_DECAY))
    return best


@pytest.mark.parametrize("folded", [False, True])
def test_focus_match_reads_numbers_and_dates_as_the_whole_tokenisation_does(folded):
    """Numbers and dates are found from where the tokens start and the runs of focus words
    from their forms alone (focus._layout), without the whole tokenisation: the same
    values on every sentence of the reports, for focus words the sentence holds (so that
    most values are not 0) and where folding changes the text's length."""
    reports = Path(__file__).resolve().parents[1] / "data" / "reports"
    sentences = [
        s
        for report in sorted(reports.glob("*.txt"))
        for s in re.split(r"(?<=[.;:])\s+", report.read_text(encoding="utf-8"))
        if s.strip()
    ]
    sentences += ["İstanbul có 1.062 đảng viên, năm 2023", "Đa\u0301ng viên: 12/3/2024 có 57 người"]
    nonzero = 0
    for text in sentences:
        sentence = fold(text) if folded else text
        tokens = focus_module._tokens.__wrapped__(sentence, folded)
        forms = [t[focus_module.FORM] for t in tokens]
        words = [w for w in forms if w.isalpha()][:6]
        starts, layout_forms = focus_module._layout.__wrapped__(sentence, folded)
        assert (list(starts), list(layout_forms)) == (
            [t[focus_module.START] for t in tokens],
            forms,
        )
        for kind in (NUMBER, DATE, PERSON):
            for focus in (Focus(kind, tuple(words[:2])), Focus(kind, tuple(words[2:5]))):
                if not focus.words:
                    continue
                expected = _focus_match_by_tokens(focus, sentence, folded)
                assert focus_match(focus, sentence, folded) == expected
                nonzero += expected > 0
    assert nonzero > 50
