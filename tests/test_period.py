"""Periods in questions and passages (qabot.period): pure functions, month ranges."""

import pytest

from qabot.period import (
    month_number,
    overlaps,
    question_time,
    report_covers,
    report_month,
    text_periods,
)


def months(year_a, month_a, year_b, month_b):
    return month_number(year_a, month_a), month_number(year_b, month_b)


@pytest.mark.parametrize(
    ("question", "period"),
    [
        ("Năm 2023 Đảng bộ kết nạp bao nhiêu đảng viên?", months(2023, 1, 2023, 12)),
        ("6 tháng đầu năm 2018 có bao nhiêu doanh nghiệp?", months(2018, 1, 2018, 6)),
        ("6 tháng cuối năm 2018 cần làm gì?", months(2018, 7, 2018, 12)),
        ("9 thang dau nam 2022 ket nap bao nhieu dang vien?", months(2022, 1, 2022, 9)),
        ("Tháng 3/2024 Đảng bộ có bao nhiêu đảng viên?", months(2024, 3, 2024, 3)),
        ("Tháng 3 năm 2024 có gì mới?", months(2024, 3, 2024, 3)),
        ("Quý III/2023 thu hút bao nhiêu vốn?", months(2023, 7, 2023, 9)),
        ("Ngày 12/6/2018 hội nghị nào diễn ra?", months(2018, 6, 2018, 6)),
        ("Nghị quyết nhiệm kỳ 2016 – 2020 đề ra gì?", months(2016, 1, 2020, 12)),
        ("Từ năm 2018 đến năm 2020 kết nạp bao nhiêu?", months(2018, 1, 2020, 12)),
    ],
)
def test_question_period(question, period):
    asked = question_time(question)
    assert asked.period == period
    assert not asked.now


@pytest.mark.parametrize(
    "question",
    [
        "Đảng bộ hiện có bao nhiêu đảng viên?",
        "Hiện nay ai là Bí thư Đảng ủy?",
        "Số liệu mới nhất về đảng viên là bao nhiêu?",
        "dang bo hien nay co bao nhieu chi bo",
    ],
)
def test_questions_about_the_present(question):
    asked = question_time(question)
    assert asked.now
    assert asked.period is None


def test_a_question_without_time():
    asked = question_time("Ai là Bí thư Đảng ủy Khu kinh tế?")
    assert asked.unspecified and not asked.now


def test_counts_are_not_years():
    """ "19.309 lao động" or "1.062 đồng chí" are counts, not periods."""
    assert question_time("Có 19.309 lao động và 1.062 đồng chí ở đâu?").period is None


def test_passage_periods_take_the_report_year_when_they_name_none():
    text = "Trong 9 tháng đầu năm, kết nạp 54 đảng viên; đến tháng 3/2024 có 1.062 đồng chí."
    assert text_periods(text, 2022) == (months(2022, 1, 2022, 9), months(2024, 3, 2024, 3))
    assert text_periods(text) == (months(2024, 3, 2024, 3),)


def test_reports_cover_the_period_they_follow():
    first_half = months(2018, 1, 2018, 6)
    assert report_covers(first_half, report_month("2018-07-11"))
    assert not report_covers(first_half, report_month("2021-11-05"))
    assert not report_covers(first_half, report_month(None))
    assert overlaps(first_half, months(2018, 6, 2019, 1))
    assert not overlaps(first_half, months(2018, 7, 2018, 12))
