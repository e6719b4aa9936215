"""The short answer: one unit or two, and what a unit ending with a colon brings along."""

from pathlib import Path

import pytest

from qabot.answer import (
    MAX_TWO_UNITS_CHARS,
    SENTENCE_FEATURES,
    answer_type_match,
    sentence_candidates,
)
from qabot.search import Searcher
from qabot.service import QAService

REPORT = """Báo cáo sơ kết công tác Đảng quý III năm 2025

Ngày 5/10/2025, Đảng ủy Khu công nghiệp Nam Cầu Kiền tổ chức hội nghị sơ kết công tác quý III.

Tại hội nghị, các đại biểu đã nghe báo cáo dự thảo về phương hướng nhiệm vụ quý IV năm 2025, \
bao gồm hai phần:

Phần 1: Công tác phát triển đảng viên trong doanh nghiệp và kiện toàn các chi bộ cơ sở.

Phần 2: Công tác kiểm tra, giám sát việc thực hiện nghị quyết của các chi bộ trực thuộc.

Đồng chí Lê Văn Bình, Bí thư Đảng ủy, phát biểu chỉ đạo hội nghị. Đồng chí đề nghị các chi bộ \
tập trung hoàn thành chỉ tiêu kết nạp 40 đảng viên mới trong năm 2025.

Chiều 12/10/2025, đồng chí Trần Minh Khoa, Bí thư Đảng ủy Khối doanh nghiệp, chủ trì buổi làm \
việc với Ban Thường vụ Đảng ủy Khu công nghiệp Nam Cầu Kiền về công tác xây dựng tổ chức đảng \
trong doanh nghiệp ngoài nhà nước. Cùng dự có đồng chí Phạm Thu Hà – Trưởng Ban Tuyên giáo \
Đảng ủy Khối, đồng chí Vũ Đức Long – Chánh Văn phòng Đảng ủy Khối và đại diện lãnh đạo các \
phòng, ban chuyên môn của Ban Quản lý các khu công nghiệp, cùng các bí thư chi bộ, chủ tịch \
công đoàn cơ sở và giám đốc các doanh nghiệp có tổ chức đảng trên địa bàn khu công nghiệp.

Tính đến tháng 9/2025, Đảng bộ Khu công nghiệp Nam Cầu Kiền đã có sự phát triển mạnh mẽ cả về \
số lượng và chất lượng. Số lượng đảng viên từ 210 đồng chí (năm 2020) tăng lên 356 đồng chí, \
số chi bộ trực thuộc từ 8 tăng lên 14.
"""


@pytest.fixture(scope="module")
def small_service(report_service) -> QAService:
    return report_service({"2025-10-05-so-ket-quy-3.txt": REPORT})


def cited_span(answer) -> str:
    source = next(p for p in answer.passages if p.highlight is not None)
    return source.text[slice(*source.highlight)]


def test_a_unit_ending_with_a_colon_brings_what_it_introduces(small_service: QAService):
    answer = small_service.ask("Báo cáo dự thảo phương hướng quý IV năm 2025 gồm mấy phần?")
    assert answer.found
    assert "bao gồm hai phần:" in answer.answer
    assert "Phần 1: Công tác phát triển đảng viên" in answer.answer
    assert len(answer.answer) <= MAX_TWO_UNITS_CHARS
    assert cited_span(answer).strip() == answer.answer  # the highlight covers both units


def test_list_items_are_read_in_the_context_of_their_introduction(small_service: QAService):
    # "báo cáo dự thảo" is only in the introduction; the item is still the best unit.
    answer = small_service.ask("Phần 2 của báo cáo dự thảo nói về công tác gì?")
    assert answer.found
    assert "kiểm tra, giám sát" in answer.answer


def test_the_answer_is_a_sentence_or_two_never_a_passage(small_service: QAService):
    answer = small_service.ask("Đảng ủy được giao chỉ tiêu kết nạp bao nhiêu đảng viên mới?")
    assert answer.found
    assert "40 đảng viên mới" in answer.answer
    assert len(answer.answer) <= MAX_TWO_UNITS_CHARS
    assert answer.answer.count(".") <= 2
    passage = answer.passages[0].text
    assert len(answer.answer) < len(passage)


def test_a_long_next_sentence_is_cut_to_fit_not_dropped(small_service: QAService):
    # The first sentence names the meeting; who else attended opens the long next one.
    answer = small_service.ask(
        "Trưởng Ban Tuyên giáo Đảng ủy Khối dự buổi làm việc với Ban Thường vụ Đảng ủy "
        "Khu công nghiệp Nam Cầu Kiền là ai?"
    )
    assert answer.found
    assert answer.answer.startswith("Chiều 12/10/2025")
    assert "Phạm Thu Hà" in answer.answer
    assert len(answer.answer) <= MAX_TWO_UNITS_CHARS
    assert answer.answer.endswith(" …")
    assert answer.answer.removesuffix(" …") == cited_span(answer).strip()


def test_a_sentence_is_read_with_the_one_before_it(small_service: QAService, embedder):
    # "Số lượng đảng viên ..." leaves its subject, the Party committee, to the sentence before.
    question = "Năm 2020 Đảng bộ Khu công nghiệp Nam Cầu Kiền có bao nhiêu đảng viên?"
    searcher = Searcher(small_service.index, embedder)
    result = searcher.search(question)
    candidates = sentence_candidates(result, small_service.index, searcher.models.dense_scale)
    by_text = {
        result.hits[c.rank].passage.text[c.start : c.end].strip(): c.features for c in candidates
    }
    coverage = SENTENCE_FEATURES.index("coverage")
    in_context = SENTENCE_FEATURES.index("context_coverage")
    members = next(f for text, f in by_text.items() if text.startswith("Số lượng đảng viên"))
    assert members[in_context] > members[coverage] + 0.3
    first = next(f for text, f in by_text.items() if text.startswith("Tính đến tháng 9/2025"))
    assert first[in_context] >= first[coverage]


def test_a_quantity_is_not_a_date():
    assert answer_type_match("number", "Năm 2023 kết nạp 175 đảng viên mới")
    assert answer_type_match("number", "Số đảng viên từ 98 đồng chí (năm 2010)")
    assert not answer_type_match("number", "Từ ngày 28/01/2010 đến tháng 1/2022, Đảng bộ")
    assert not answer_type_match("number", "Giai đoạn 1994 – 2003")
    assert answer_type_match("date", "Từ ngày 28/01/2010 đến tháng 1/2022, Đảng bộ")


def test_the_report_folder_is_not_touched(small_service: QAService):
    docs = Path(small_service.index.index_dir).parent / "docs"
    assert [p.name for p in docs.iterdir()] == ["2025-10-05-so-ket-quy-3.txt"]
