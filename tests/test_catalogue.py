"""The report list people browse: newest first, filtered by words typed with or without
diacritics, a page at a time (qabot.catalogue and QAService.find_documents)."""

from __future__ import annotations

from pathlib import Path

from qabot.catalogue import MAX_DOCUMENTS_PAGE, Catalogue, newest_first, query_words
from qabot.index.meta import DocumentInfo
from qabot.service import QAService


def report(doc_id: str, title: str, date: str | None) -> DocumentInfo:
    return DocumentInfo(doc_id, title, date, doc_id, "hash", paragraphs=3, passages=2)


REPORTS = [
    report("a/hp-2018.txt", "Đảng ủy Khu kinh tế Hải Phòng sơ kết 6 tháng", "2018-07-11"),
    report("ct.txt", "Cần Thơ sơ kết giữa nhiệm kỳ", "2018-06-12"),
    report("hp-2024.docx", "Hải Phòng tiếp đoàn Hà Tĩnh", "2024-03-29"),
    report("khac.txt", "Báo cáo không ghi ngày", None),
    report("dong.txt", "Đồng Nai: phong trào thi đua", "2021-01-05"),
    report("aaa.txt", "Báo cáo chưa có ngày, tên A", None),
]


def ids(documents) -> list[str]:
    return [d.doc_id for d in documents]


def test_newest_first_with_undated_reports_last_by_title() -> None:
    assert ids(newest_first(REPORTS)) == [
        "hp-2024.docx",
        "dong.txt",
        "a/hp-2018.txt",
        "ct.txt",
        "aaa.txt",  # "Báo cáo chưa…" before "Báo cáo không…"
        "khac.txt",
    ]


def test_words_match_with_or_without_diacritics_at_the_start_of_a_word() -> None:
    catalogue = Catalogue(REPORTS)
    assert ids(catalogue.page("hai phong").documents) == ["hp-2024.docx", "a/hp-2018.txt"]
    assert catalogue.page("Hải   PHÒNG").total == 2
    assert catalogue.page("hai phong").query == "hai phong"
    # "phong" starts a word of "Đồng Nai: phong trào" too, but "hai" does not.
    assert ids(catalogue.page("phong").documents) == ["hp-2024.docx", "dong.txt", "a/hp-2018.txt"]
    assert catalogue.page("ong").total == 0  # inside words only: no match
    assert ids(catalogue.page("2018").documents) == ["a/hp-2018.txt", "ct.txt"]  # dates
    assert ids(catalogue.page("docx").documents) == ["hp-2024.docx"]  # file names
    assert catalogue.page("hai phong 2018").total == 1  # every word must match
    assert catalogue.page("  ").total == len(REPORTS)  # no words: every report
    assert query_words("Đảng ủy, 6/2018") == ["dang", "uy", "6", "2018"]


def test_pages_know_their_neighbours() -> None:
    catalogue = Catalogue(REPORTS)
    first = catalogue.page(limit=4)
    assert len(first.documents) == 4 and first.total == 6
    assert first.next_offset == 4 and first.previous_offset is None
    second = catalogue.page(offset=first.next_offset, limit=4)
    assert ids(second.documents) == ["aaa.txt", "khac.txt"]
    assert second.next_offset is None and second.previous_offset == 0
    middle = catalogue.page(offset=3, limit=2)
    assert middle.previous_offset == 1 and middle.next_offset == 5
    everything = catalogue.page(offset=1, limit=None)
    assert len(everything.documents) == 5 and everything.next_offset is None
    assert everything.previous_offset == 0
    # Out-of-range requests are clamped, never an error.
    assert catalogue.page(offset=-5, limit=0).offset == 0
    assert len(catalogue.page(offset=-5, limit=0).documents) == 1
    assert catalogue.page(limit=10**9).limit == MAX_DOCUMENTS_PAGE
    past = catalogue.page(offset=100)
    assert past.documents == () and past.total == 6 and past.next_offset is None


def test_service_pages_follow_the_live_version(writable_service: QAService) -> None:
    service = writable_service
    before = service.find_documents(limit=2)
    assert before.total == len(service.documents()) == 5
    assert ids(before.documents) == ids(service.documents()[:2])
    assert service.document(before.documents[0].doc_id) == before.documents[0]
    assert service.document("no-such-report.txt") is None

    text = (
        "Báo cáo thử Vĩnh Long năm 2030\n\nĐảng ủy Khu công nghiệp Vĩnh Long kết nạp 12 đảng viên."
    )
    service.add_documents([("2030-01-02-vinh-long.txt", text.encode())])
    after = service.find_documents("vinh long")
    assert after.total == 1 and after.documents[0].doc_id == "2030-01-02-vinh-long.txt"
    assert service.find_documents().total == 6
    assert ids(service.find_documents(limit=None).documents) == ids(service.documents())


def test_sizes_are_read_for_the_documents_asked_only(writable_service: QAService) -> None:
    page = writable_service.find_documents(limit=2)
    sizes = writable_service.document_sizes(page.documents)
    assert set(sizes) == {d.doc_id for d in page.documents}
    docs = Path(writable_service.docs_dir)
    assert all(sizes[d.doc_id] == (docs / d.doc_id).stat().st_size for d in page.documents)
