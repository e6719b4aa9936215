"""Normalisation, folding, tokens and sentence splitting, on strings from the sample reports."""

import random
import re
import unicodedata
from pathlib import Path

import pytest

from qabot.text import (
    fold,
    has_diacritics,
    match_key,
    normalize,
    sentences,
    strip_marks,
    tokens,
)

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"


def _reference_strip_marks(text: str) -> str:
    # The definition: decompose the whole text, drop the combining marks, compose again.
    text = text.replace("đ", "d").replace("Đ", "D")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", bare)


def _reference_tokens(text: str) -> list[str]:
    found = []
    for m in re.finditer(r"\d+(?:[.,]\d+)*|[^\W_]+", text):
        raw = m.group()
        if raw[0].isdigit():
            raw = raw.replace(".", "").replace(",", "").lstrip("0") or "0"
        found.append(raw.lower())
    return found


def test_fast_folding_and_tokens_equal_their_definitions():
    # Reports, their decomposed form, and random strings of Latin, Vietnamese, Greek,
    # Hangul syllables and jamo, Devanagari, astral characters and stray combining marks.
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.glob("*.txt"))]
    texts += [unicodedata.normalize("NFD", t) for t in texts]
    rng = random.Random(7)
    blocks = [
        (0x20, 0x2FF),
        (0x300, 0x36F),
        (0x1E00, 0x1EFF),
        (0x370, 0x3FF),
        (0xAC00, 0xAC40),
        (0x1100, 0x1175),
        (0x900, 0x97F),
        (0x10000, 0x1FAFF),
        (0x2000, 0x206F),
    ]
    for _ in range(3000):
        chars = [chr(rng.randint(*rng.choice(blocks))) for _ in range(rng.randint(0, 16))]
        texts.append("".join(chars))
    for text in texts:
        assert strip_marks(text) == _reference_strip_marks(text), repr(text)
        assert tokens(text) == _reference_tokens(text), repr(text)
        folded = fold(unicodedata.normalize("NFC", text))
        assert match_key(text) == "".join(c for c in folded if c.isalnum()), repr(text)


def test_normalize_composes_and_unifies_tone_marks():
    decomposed = unicodedata.normalize("NFD", "Đảng ủy Khu kinh tế")
    assert normalize(decomposed) == "Đảng ủy Khu kinh tế"
    assert normalize("mối quan hệ hài hoà") == "mối quan hệ hài hòa"
    assert normalize("Văn phòng Đảng uỷ Khu kinh tế") == "Văn phòng Đảng ủy Khu kinh tế"
    assert normalize("Thành uỷ và Văn phòng Thành ủy") == "Thành ủy và Văn phòng Thành ủy"
    assert normalize("sức khoẻ, thuỷ sản") == "sức khỏe, thủy sản"
    assert normalize("UỶ BAN") == "ỦY BAN"


@pytest.mark.parametrize("word", ["quý", "quỷ", "hoàng", "toán", "thuyền", "khuya", "Hòa"])
def test_normalize_leaves_other_syllables_alone(word):
    assert normalize(word) == word


def test_normalize_turns_nbsp_and_zero_width_into_spaces():
    assert normalize("Đảng\u00a0bộ\u200bKhu") == "Đảng bộ Khu"
    assert normalize("\ufeffNgày") == " Ngày"


def test_fold_and_match_key():
    assert fold("Đảng viên") == "dang vien"
    assert has_diacritics("đảng viên") and not has_diacritics("dang vien")
    assert match_key("TP. HCM") == match_key("TP.HCM") == "tphcm"
    assert match_key("1.062") == match_key("1062")
    assert match_key("Hoà") == match_key("hòa")


def test_tokens_keep_numbers_whole():
    assert tokens("tăng lên 1.062 đồng chí") == ["tăng", "lên", "1062", "đồng", "chí"]
    assert tokens("19.309 tỷ đồng") == ["19309", "tỷ", "đồng"]
    assert tokens("5,4 tỷ") == ["54", "tỷ"]
    assert tokens("04 lớp") == ["4", "lớp"]
    assert tokens("28-NQ/TU") == ["28", "nq", "tu"]


def test_sentences_do_not_break_inside_tokens():
    text = (
        "Số lượng đảng viên từ 98 đồng chí đảng viên (năm 2010) tăng lên 1.062 đồng chí "
        "(tháng 3/2024). Một số chỉ tiêu đáng chú ý đạt được là: tổng doanh thu 19.309 tỷ "
        "đồng, tăng 23%. Kỷ niệm 30 năm xây dựng và phát triển các KCX, KCN TP.HCM. "
        "Thực hiện Nghị quyết 28-NQ/TU của Ban Thường vụ Thành ủy."
    )
    assert sentences(text) == [
        "Số lượng đảng viên từ 98 đồng chí đảng viên (năm 2010) tăng lên 1.062 đồng chí "
        "(tháng 3/2024).",
        "Một số chỉ tiêu đáng chú ý đạt được là: tổng doanh thu 19.309 tỷ đồng, tăng 23%.",
        "Kỷ niệm 30 năm xây dựng và phát triển các KCX, KCN TP.HCM.",
        "Thực hiện Nghị quyết 28-NQ/TU của Ban Thường vụ Thành ủy.",
    ]


def test_sentences_end_marker_ellipsis_and_abbreviations():
    text = "hoàn thành các chỉ tiêu, nhiệm vụ được UBND thành phố giao./. Thực hiện: TL"
    assert sentences(text) == [
        "hoàn thành các chỉ tiêu, nhiệm vụ được UBND thành phố giao./.",
        "Thực hiện: TL",
    ]
    text = "tổng huy động vốn 60.157 tỷ đồng, tăng 11,4%... so với cùng kỳ năm 2020. Bên cạnh đó"
    assert sentences(text) == [
        "tổng huy động vốn 60.157 tỷ đồng, tăng 11,4%... so với cùng kỳ năm 2020.",
        "Bên cạnh đó",
    ]
    text = "thực hiện tốt công tác cải cách hành chính, … và các chỉ tiêu khác."
    assert len(sentences(text)) == 1
    text = "Báo cáo do ThS. Nguyễn Văn An trình bày. Hội nghị thống nhất."
    assert sentences(text) == ["Báo cáo do ThS. Nguyễn Văn An trình bày.", "Hội nghị thống nhất."]
    assert sentences("Ông Nguyễn V. An phát biểu.") == ["Ông Nguyễn V. An phát biểu."]


def test_sentences_respect_paragraph_breaks_and_list_numbers():
    text = (
        "III. Phương hướng nhiệm vụ thời gian tới:\n\n1. Xác định chương trình công tác. Làm tốt."
    )
    assert sentences(text) == [
        "III. Phương hướng nhiệm vụ thời gian tới:",
        "1. Xác định chương trình công tác.",
        "Làm tốt.",
    ]
    assert sentences("2.1. Công tác kiện toàn tổ chức, bộ máy") == [
        "2.1. Công tác kiện toàn tổ chức, bộ máy"
    ]
    # A number ending a sentence is still an end.
    assert sentences("Tổng số là 23. Năm nay tăng.") == ["Tổng số là 23.", "Năm nay tăng."]


def test_long_sentences_become_clause_units():
    from qabot.text import sentence_units

    clauses = [
        "Qua 02 năm thực hiện nghị quyết, Đảng ủy đã tổ chức được 12 lớp triển khai Nghị quyết",
        "kết nạp 77/110 đảng viên mới, đạt 70% chỉ tiêu của nhiệm kỳ",
        "tổ chức 04 lớp bồi dưỡng lý luận chính trị dành cho đảng viên mới",
        "tiếp nhận 01 chi bộ, giải thể 02 chi bộ, hiện nay còn 23 tổ chức cơ sở đảng trực thuộc",
    ]
    text = "Hội nghị đã diễn ra. " + "; ".join(clauses) + "."
    units = [text[s:e] for s, e in sentence_units(text, max_chars=200)]
    assert units[0] == "Hội nghị đã diễn ra."
    assert units[1:] == [c + ";" for c in clauses[:-1]] + [clauses[-1] + "."]
    assert [text[s:e] for s, e in sentence_units(text, max_chars=1000)][1].startswith("Qua 02")


def test_a_colon_at_the_end_introduces_what_follows():
    from qabot.text import introduces

    assert introduces("Báo cáo dự thảo bao gồm 3 phần:  ")
    assert not introduces("Phần 1: Lãnh đạo thực hiện nhiệm vụ chính trị.")


@pytest.mark.parametrize(
    ("unit", "marker"),
    [
        ("- Tăng cường công tác kiểm tra.", "-"),
        ("2. Đẩy mạnh phát triển đảng viên.", "number."),
        ("b) Công tác dân vận.", "letter)"),
        ("IV. Phương hướng nhiệm vụ:", "roman."),
        ("Phần 2: Công tác xây dựng Đảng.", "phần N"),
        ("Đồng chí Lê Văn Bình phát biểu chỉ đạo hội nghị.", None),
        ("Năm 2023, Đảng bộ kết nạp 175 đảng viên.", None),
    ],
)
def test_list_markers_have_a_shape(unit: str, marker: str | None):
    from qabot.text import list_marker

    assert list_marker(unit) == marker


def test_a_list_ends_where_its_items_stop_sharing_a_marker():
    from qabot.text import list_owners

    units = [
        "Ngày 5/10, Đảng ủy tổ chức hội nghị.",
        "Báo cáo bao gồm hai phần:",
        "Phần 1: Công tác phát triển đảng viên.",
        "Phần 2: Công tác kiểm tra, giám sát.",
        "Đồng chí Bí thư phát biểu chỉ đạo hội nghị.",
        "Nhiệm vụ thời gian tới:",
        "Xác định chương trình công tác.",
        "Đẩy mạnh phát triển đảng viên.",
    ]
    # Items without a marker run to the end of the passage (or to the next heading).
    assert list_owners(units) == [None, None, 1, 1, None, None, 5, 5]


@pytest.mark.parametrize(
    ("question", "vietnamese"),
    [
        ("Đảng ủy Khu kinh tế Hải Phòng có bao nhiêu đảng viên?", True),
        ("truong ban quan ly khu kinh te thanh pho hai phong nam 2021 la ai", True),
        ("KCN có bao nhiêu DN?", True),
        ("Electronic dance music là gì?", True),  # a foreign name in a Vietnamese question
        ("2024", True),
        ("What is the capital of France?", False),
        ("how many members did the party have in 2010", False),
    ],
)
def test_looks_vietnamese(question, vietnamese):
    from qabot.text import looks_vietnamese

    assert looks_vietnamese(question) is vietnamese
