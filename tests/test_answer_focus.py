"""The short answer holds the asked kind of thing next to the question's focus words."""

import numpy as np
import pytest

from qabot.answer import SENTENCE_FEATURES, sentence_candidates
from qabot.service import QAService

# Each question has a unit that puts the asked thing next to its focus words and units
# that hold a thing of that kind elsewhere (a number, a name) or none at all.
REPORT = """Đảng bộ Khu công nghiệp Tân Phú sơ kết công tác xây dựng Đảng năm 2025

Trong năm, Đảng bộ đã tổ chức 3 đợt sinh hoạt chuyên đề cho đảng viên ở các chi bộ.

Hiện nay Đảng bộ có 1.240 đảng viên sinh hoạt tại các chi bộ cơ sở trong doanh nghiệp.

Đại hội lần thứ nhất của Đảng bộ có 120 đại biểu dự, họp trong 2 ngày tại hội trường.

Đại hội lần thứ nhất được tổ chức vào ngày 15/8/2003 tại hội trường Ban Quản lý.

Phó Bí thư Đảng ủy phụ trách công tác tổ chức, phối hợp với đồng chí Nguyễn Hải Nam ở \
Văn phòng trong việc tổng hợp báo cáo.

Đồng chí Hoàng Minh Châu - Phó Bí thư Đảng ủy trình bày báo cáo tổng kết tại hội nghị.
"""


@pytest.fixture(scope="module")
def focus_service(report_service) -> QAService:
    return report_service({"2025-06-30-tan-phu.txt": REPORT})


CASES = [
    ("Đảng bộ Khu công nghiệp Tân Phú có bao nhiêu đảng viên?", "1.240"),
    ("Ai là Phó Bí thư Đảng ủy Khu công nghiệp Tân Phú?", "Hoàng Minh Châu"),
    ("Đại hội Đảng bộ lần thứ nhất được tổ chức vào ngày nào?", "15/8/2003"),
]


def best_unit(service: QAService, question: str, weights: np.ndarray) -> str:
    """The unit the answer-sentence model ranks first among the first passages' units."""
    searcher = service._require()
    result = searcher.search(question, 5)
    candidates = sentence_candidates(result, searcher.index, searcher.models.dense_scale)
    best = max(candidates, key=lambda c: float(c.features @ weights))
    return result.hits[best.rank].passage.text[best.start : best.end]


@pytest.mark.parametrize(("question", "expected"), CASES)
def test_the_focus_thing_is_the_answer(focus_service: QAService, question, expected):
    answer = focus_service.ask(question, channel=None)
    assert answer.found
    assert expected in answer.answer
    weights = focus_service._require().models.sentence.weights
    assert expected in best_unit(focus_service, question, weights)


def test_without_the_focus_weight_a_unit_without_the_asked_thing_wins(focus_service: QAService):
    """The fixture tests the focus feature: with its weight at zero, the unit that names
    the title but no person ranks first for "Ai là Phó Bí thư …?"."""
    weights = np.array(focus_service._require().models.sentence.weights)
    weights[SENTENCE_FEATURES.index("focus")] = 0.0
    question, expected = CASES[1]
    assert expected not in best_unit(focus_service, question, weights)
