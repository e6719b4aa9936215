"""Passages: sizes, overlap, merged fragments, offsets and the context header."""

from itertools import pairwise
from pathlib import Path

from qabot.ingest import CAPTION, Document, load_document
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
    lead_in = next(p for p in passages if "Tiếp và làm việc với đoàn" in p.text)
    assert "Chu Đức Anh" in lead_in.text  # the list it introduces is in the same passage
    heading = next(p for p in passages if "I.Đặc điểm tình hình:" in p.text)
    assert "Tình hình chung" in heading.text and len(heading.text) > 200
    unpacked = split_document(document, PassageConfig(pack_chars=0))
    lead_in = next(p for p in unpacked if p.text.startswith("Tiếp và làm việc với đoàn"))
    cited = document.paragraphs[lead_in.paragraph - 1]
    assert cited.text.startswith("Chu Đức Anh")  # the citation names the paragraph with the text


def test_captions_stay_separate():
    document = next(d for d in reports() if "ha-tinh" in d.doc_id)
    captions = [p for p in split_document(document) if p.kind == CAPTION]
    assert any(p.text == "Quang cảnh hội nghị" for p in captions)


def write_report(tmp_path: Path, paragraphs: list[str]) -> Document:
    path = tmp_path / "bao-cao.txt"
    path.write_text("Báo cáo thử\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return load_document(path, tmp_path)


def sentence(n: int, length: int) -> str:
    """A body paragraph of about ``length`` characters, numbered so it can be found."""
    words = f"Đoạn số {n} nói về kết quả công tác xây dựng Đảng trong các khu công nghiệp".split()
    text = ""
    while len(text) < length:
        text += " ".join(words) + ", "
    return text[: length - 1].rstrip(", ") + "."


def test_short_paragraphs_pack_into_passages_up_to_the_limit(tmp_path):
    paragraphs = [sentence(n, 300) for n in range(1, 8)]
    document = write_report(tmp_path, paragraphs)
    passages = split_document(document, PassageConfig(pack_chars=700))
    body = [p for p in passages if "Đoạn số" in p.text]
    assert 2 < len(body) < len(paragraphs)  # packed, but not into one passage
    for passage in body:
        assert len(passage.text) <= 700
        assert passage.text.count("Đoạn số") >= 1
    # every paragraph is in exactly one passage, in order
    found = [int(t.split("Đoạn số ")[1].split()[0]) for p in body for t in p.text.split("\n\n")]
    assert sorted(set(found)) == list(range(1, 8)) and found == sorted(found)
    unpacked = split_document(document, PassageConfig(pack_chars=0))
    assert len([p for p in unpacked if "Đoạn số" in p.text]) == len(paragraphs)


def test_a_paragraph_ending_with_a_colon_keeps_what_it_introduces(tmp_path):
    intro = "Báo cáo dự thảo năm 2018 " + sentence(1, 250)[:-1] + ", bao gồm 3 phần:"
    parts = [f"Phần {n}: " + sentence(n + 1, 300) for n in (1, 2, 3)]
    document = write_report(tmp_path, [intro, *parts])
    passages = split_document(document, PassageConfig(max_chars=1400, pack_chars=400))
    first = next(p for p in passages if "bao gồm 3 phần:" in p.text)
    assert "Phần 1:" in first.text  # joined although the two pass pack_chars
    assert "Phần 3:" not in first.text  # only the colon forces a join; pack_chars still rules
    assert document.paragraphs[first.paragraph - 1].text.startswith("Phần 1:")  # the longer
    tight = split_document(document, PassageConfig(max_chars=500, pack_chars=400))
    assert all(len(p.text) <= 500 for p in tight)  # never past max_chars
