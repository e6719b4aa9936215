"""Index terms (qabot.terms): the shortcuts search takes must spell what the full functions
spell."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot.terms import syllable_set, term_sets

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"


def _lines() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(REPORTS.glob("*.txt"))]
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    return [*lines, "Đảng ủy KCN Tân Bình (2024-03-01)", "1.062 đảng viên; TP.HCM", ""]


@pytest.mark.parametrize("folded", [False, True])
def test_a_texts_syllable_set_is_the_syllables_of_its_term_sets(folded):
    lines = _lines()
    assert len(lines) > 50
    for line in lines:
        assert syllable_set(line, folded) == term_sets(line, folded)[0], line
    assert syllable_set("Đảng viên", folded) == ({"~dang", "~vien"} if folded else {"đảng", "viên"})
