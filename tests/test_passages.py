"""Passages: sizes, overlap, merged fragments, offsets and the context header."""

from itertools import pairwise

from qabot.ingest import CAPTION, load_document
from qabot.passages import PassageConfig, split_document

from .conftest import REPORTS


def reports():
    return [load_document(p, REPORTS) for p in sorted(REPORTS.iterdir())]


def test_passages_point_back_into_the_document():
    for document in reports():
        passages = split_document(document)
        assert passages, document.doc_id
        for passage in passages:
            assert document.text[passage.start : passage.end] == passage.text
            assert passage.doc_id == document.doc_id
            paragraph = document.paragraphs[passage.paragraph - 1]
            assert (passage.start <= paragraph.start + 2 and paragraph.end <= passage.end + 2) or (
                paragraph.start <= passage.start < passage.end <= paragraph.end
            )
            assert document.title in passage.header
            assert passage.header not in passage.text
            assert passage.indexed_text.startswith(passage.header)


def test_long_paragraphs_split_at_sentences_with_overlap():
    config = PassageConfig(max_chars=350, min_chars=60, overlap_chars=200)
    document = next(d for d in reports() if "ha-tinh" in d.doc_id)
    passages = split_document(document, config)
    long_paragraph = max(document.paragraphs, key=lambda p: len(p.text))
    assert len([p for p in passages if p.paragraph == long_paragraph.number]) >= 3
    for piece in passages:
        # A merged lead-in fragment (shorter than min_chars) may add to the limit.
        assert len(piece.text) <= config.max_chars + config.min_chars
    for piece in (p for p in passages if p.paragraph == long_paragraph.number):
        # Pieces end at a sentence end, unless one sentence alone was longer than the limit.
        assert piece.text[-1] in ".;:!?…)" or len(piece.text) > config.max_chars - 80
    overlaps = [(a, b) for a, b in pairwise(passages) if b.start < a.end]
    assert len(overlaps) >= 3
    for a, b in overlaps:  # the overlap is whole sentences: the next piece starts on one
        assert b.text[0].isupper() and a.text.endswith(b.text[: a.end - b.start])


def test_short_fragments_join_the_next_paragraph():
    document = next(d for d in reports() if "ha-tinh" in d.doc_id)
    passages = split_document(document)
    lead_in = next(p for p in passages if p.text.startswith("Tiếp và làm việc với đoàn"))
    assert "Chu Đức Anh" in lead_in.text  # the list it introduces is in the same passage
    cited = document.paragraphs[lead_in.paragraph - 1]
    assert cited.text.startswith("Chu Đức Anh")  # the citation names the paragraph with the text
    heading = next(p for p in passages if p.text.startswith("I.Đặc điểm tình hình:"))
    assert "Tình hình chung" in heading.text and len(heading.text) > 200


def test_captions_stay_separate():
    document = next(d for d in reports() if "ha-tinh" in d.doc_id)
    captions = [p for p in split_document(document) if p.kind == CAPTION]
    assert any(p.text == "Quang cảnh hội nghị" for p in captions)
