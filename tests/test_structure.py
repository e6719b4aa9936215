"""What a report's structure says, in ranking (issue 14): captions, the report's subject,
time. A small corpus of made-up reports, indexed once with the real embedder and ranked
with the shipped (fitted) model."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from qabot import search
from qabot.index import build_index, meta, open_index
from qabot.index.build import DOCUMENT_VERSION
from qabot.ingest import CAPTION
from qabot.query import analyse

REPORTS = {
    "2021-11-05-khoi-doanh-nghiep.md": (
        "Thường trực Thành ủy làm việc với Đảng ủy Khối doanh nghiệp thành phố Hải Phòng",
        "2021-11-05",
        [
            "Chiều 3-11, Thường trực Thành ủy làm việc với Ban Thường vụ Đảng ủy Khối doanh "
            "nghiệp thành phố Hải Phòng về công tác xây dựng Đảng và hệ thống chính trị.",
            "Đồng chí Phạm Quang Lâm, Bí thư Đảng ủy Khối, báo cáo kết quả lãnh đạo thực hiện "
            "nhiệm vụ chính trị của Đảng bộ trong thời gian qua.",
        ],
    ),
    "2024-03-29-doan-ha-tinh.md": (
        "Đảng ủy Khối các Cơ quan và Doanh nghiệp tỉnh Hà Tĩnh học tập kinh nghiệm tại thành "
        "phố Hải Phòng",
        "2024-03-29",
        [
            "Sáng 29/3/2024, đoàn công tác Đảng ủy Khối các Cơ quan và Doanh nghiệp tỉnh Hà "
            "Tĩnh do đồng chí Đặng Văn Hòa, Bí thư Đảng ủy Khối các Cơ quan và Doanh nghiệp "
            "tỉnh Hà Tĩnh làm trưởng đoàn đến thăm và làm việc tại thành phố Hải Phòng.",
        ],
    ),
    "2019-12-20-tan-phu.md": (
        "Đảng bộ Khu công nghiệp Tân Phú tổng kết công tác xây dựng Đảng",
        "2019-12-20",
        [
            "Đảng bộ Khu công nghiệp Tân Phú hiện có 42 chi bộ trực thuộc với 820 đảng viên.",
            "Năm 2019, Đảng bộ kết nạp 35 đảng viên mới, vượt chỉ tiêu đề ra.",
        ],
    ),
    "2023-12-22-tan-phu.md": (
        "Đảng bộ Khu công nghiệp Tân Phú tổng kết công tác xây dựng Đảng",
        "2023-12-22",
        [
            "Đảng bộ Khu công nghiệp Tân Phú hiện có 51 chi bộ trực thuộc với 1.050 đảng viên.",
            "Năm 2023, Đảng bộ kết nạp 48 đảng viên mới, vượt chỉ tiêu đề ra.",
        ],
    ),
    "2018-07-11-khu-kinh-te.md": (
        "Đảng ủy Khu kinh tế sơ kết 6 tháng đầu năm 2018",
        "2018-07-11",
        [
            "Ngày 11/7/2018, Đảng ủy Khu kinh tế tổ chức Hội nghị sơ kết tình hình thực hiện "
            "nhiệm vụ 6 tháng đầu năm, phương hướng nhiệm vụ 6 tháng cuối năm 2018.",
            "Đồng chí Trần Minh Khoa - Phó Bí thư Đảng ủy Khu kinh tế tổng kết ý kiến các đại biểu",
            "Hội nghị thống nhất các giải pháp trọng tâm: nâng cao chất lượng sinh hoạt chi "
            "bộ, phát triển đảng viên trong doanh nghiệp, xây dựng tổ chức đoàn thể vững mạnh.",
        ],
    ),
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("structure-docs")
    for name, (title, date, paragraphs) in REPORTS.items():
        body = "\n\n".join(paragraphs)
        (docs / name).write_text(f'---\ntitle: "{title}"\ndate: {date}\n---\n{body}\n', "utf-8")
    index_dir = tmp_path_factory.mktemp("structure-index")
    build_index(docs, index_dir, embedder)
    return search.Searcher(open_index(index_dir), embedder)


def first(searcher, question, top_k=1):
    return [h.passage for h in searcher.search(question, top_k).hits]


def test_a_fact_only_a_caption_holds_is_among_the_first_five(searcher):
    # More body passages than five: sorted after every body passage, as captions used to
    # be, the caption could not be among the first five.
    assert sum(p.kind != CAPTION for p in searcher.index.passages) > 5
    hits = first(searcher, "Ai là Phó Bí thư Đảng ủy Khu kinh tế tổng kết ý kiến các đại biểu?", 5)
    captions = [p for p in hits if p.kind == CAPTION]
    assert captions and "Trần Minh Khoa" in captions[0].text


def test_the_reports_own_subject_is_preferred_over_a_similar_name(searcher):
    """The passage says only "Bí thư Đảng ủy Khối"; its report says which Khối."""
    (top,) = first(searcher, "Ai là Bí thư Đảng ủy Khối doanh nghiệp thành phố Hải Phòng?")
    assert top.doc_id == "2021-11-05-khoi-doanh-nghiep.md"
    assert "Phạm Quang Lâm" in top.text
    info = searcher.index.document(top.doc_id)
    assert "Đảng ủy Khối doanh nghiệp thành phố Hải Phòng" in info.subject


def test_the_latest_report_answers_a_question_about_now(searcher):
    (top,) = first(searcher, "Đảng bộ Khu công nghiệp Tân Phú hiện nay có bao nhiêu đảng viên?")
    assert top.doc_id == "2023-12-22-tan-phu.md"


def test_the_asked_years_passage_is_preferred(searcher):
    (top,) = first(
        searcher, "Năm 2019, Đảng bộ Khu công nghiệp Tân Phú kết nạp bao nhiêu đảng viên?"
    )
    assert top.doc_id == "2019-12-20-tan-phu.md"
    (top,) = first(
        searcher, "Năm 2023, Đảng bộ Khu công nghiệp Tân Phú kết nạp bao nhiêu đảng viên?"
    )
    assert top.doc_id == "2023-12-22-tan-phu.md"


def test_time_features_follow_the_question(searcher):
    """The time columns of the same two passages under a question about now and one about
    a year."""
    index = searcher.index
    rows = [i for i, p in enumerate(index.passages) if "Tân Phú" in p.text]
    assert len(rows) == 2
    rows_array = np.array(rows)

    def analysed(question):
        return analyse(question, index.restorer)

    now = searcher.structure_columns(analysed("Tân Phú hiện có bao nhiêu đảng viên?"), rows_array)
    dates = [index.document(index.passages[r].doc_id).date for r in rows]
    latest = int(np.argmax(dates))
    assert now["recency_now"][latest] == 1.0 and now["recency_now"][1 - latest] == 0.0
    year = searcher.structure_columns(analysed("Năm 2019 Tân Phú kết nạp bao nhiêu?"), rows_array)
    assert year["recency"].tolist() == [0.0, 0.0]
    assert year["period_text"][1 - latest] == 1.0 and year["period_text"][latest] == 0.0
    assert year["period_conflict"][latest] == 1.0


def test_subjects_are_stored_with_each_document(searcher):
    for info in searcher.index.documents:
        title = REPORTS[info.doc_id][0]
        assert info.subject.startswith(title)
    assert searcher.index.manifest["documents_derived"] == DOCUMENT_VERSION


def test_a_version_written_before_subjects_reads_with_empty_subjects():
    db = sqlite3.connect(":memory:")
    db.executescript(meta.SCHEMA)
    db.execute("DROP TABLE documents")
    db.execute(
        "CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT,"
        " source TEXT NOT NULL, content_hash TEXT NOT NULL, paragraphs INTEGER NOT NULL,"
        " passages INTEGER NOT NULL)"
    )
    db.execute("INSERT INTO documents VALUES ('a.txt', 'Báo cáo', NULL, 'a.txt', 'h', 1, 1)")
    (info,) = meta.read_documents(db)
    assert info.doc_id == "a.txt" and info.subject == ""
    assert meta.read_document_rows(db, "a.txt").info.subject == ""
