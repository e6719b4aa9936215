"""Loaders for every format, cleaning rules and dates, on real files written to disk."""

import time
from pathlib import Path

import pytest

from qabot.ingest import BODY, CAPTION, IngestError, discover, load_document
from qabot.ingest.dates import find_date

from . import damaged
from .conftest import REPORTS

REPORT = (
    "Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động\n\n"
    "Ngày 5/9/2025, Ban Quản lý Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động "
    "cho 120 công nhân. Lớp học kéo dài hai ngày.\n\n"
    "Các học viên được hướng dẫn sơ cứu và phòng cháy chữa cháy tại nơi làm việc.\n"
)


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_plain_text_report(tmp_path):
    document = load_document(write(tmp_path, "bao-cao.txt", REPORT), tmp_path)
    assert document.doc_id == "bao-cao.txt"
    assert document.title == "Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động"
    assert document.date == "2025-09-05"
    assert [p.number for p in document.paragraphs] == [1, 2]
    assert document.paragraphs[0].text.startswith("Ngày 5/9/2025")
    first = document.paragraphs[1]
    assert document.text[first.start : first.end] == first.text
    assert len(document.content_hash) == 64


def test_doc_id_comes_from_the_relative_path(tmp_path):
    (tmp_path / "2025").mkdir()
    document = load_document(write(tmp_path / "2025", "thang-9.txt", REPORT), tmp_path)
    assert document.doc_id == "2025/thang-9.txt"
    assert document.source == "2025/thang-9.txt"


def test_markdown_with_front_matter(tmp_path):
    text = (
        "---\ntitle: Báo cáo quý III\ndate: 2025-10-01\n---\n# Tiêu đề khác\n\n"
        "Nội dung **chính** của [báo cáo](http://x) năm nay được trình bày đầy đủ.\n"
    )
    document = load_document(write(tmp_path, "q3.md", text), tmp_path)
    assert document.title == "Báo cáo quý III"
    assert document.date == "2025-10-01"
    assert "Nội dung chính của báo cáo năm nay" in document.text
    assert "**" not in document.text and "http" not in document.text


def test_html_keeps_the_article_and_drops_page_chrome(tmp_path):
    html = """<html><head><title>Trang tin | Báo cáo</title>
    <meta property="article:published_time" content="2024-03-29T08:00:00+07:00">
    <script>var tracking = "không được lọt vào";</script><style>p {color: red}</style></head>
    <body><nav><a href="/">Trang chủ</a> <a href="/tin">Tin tức</a></nav>
    <article><h1>Hội nghị tiếp đoàn Hà Tĩnh</h1>
    <p>Sáng ngày 29/3/2024 tại hội trường Ban Quản lý diễn ra hội nghị&nbsp;tiếp đoàn.</p>
    <figure><img src="a.jpg"><figcaption>Quang cảnh hội nghị</figcaption></figure>
    <p>Hội nghị đã diễn ra sôi nổi với tinh thần trao đổi kinh nghiệm.</p>
    <div class="share-buttons">Chia sẻ Facebook Zalo</div></article>
    <aside class="related">Bài viết liên quan: Một bài khác</aside>
    <footer>Bản quyền thuộc về cổng thông tin</footer></body></html>"""
    document = load_document(write(tmp_path, "tin.html", html), tmp_path)
    assert document.title == "Hội nghị tiếp đoàn Hà Tĩnh"
    assert document.date == "2024-03-29"
    texts = [p.text for p in document.paragraphs]
    assert "Sáng ngày 29/3/2024 tại hội trường Ban Quản lý diễn ra hội nghị tiếp đoàn." in texts
    joined = "\n".join(texts)
    for chrome in ("tracking", "color", "Trang chủ", "Chia sẻ", "Bài viết liên quan", "Bản quyền"):
        assert chrome not in joined
    caption = next(p for p in document.paragraphs if p.text == "Quang cảnh hội nghị")
    assert caption.kind == CAPTION


def test_docx(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Báo cáo công tác Đảng năm 2025", level=1)
    d.add_paragraph("Ngày 12/6/2025, Đảng ủy tổ chức hội nghị sơ kết công tác xây dựng Đảng.")
    d.add_paragraph("Toàn Đảng bộ hiện có 23 tổ chức cơ sở đảng trực thuộc.")
    d.save(tmp_path / "bao-cao.docx")
    document = load_document(tmp_path / "bao-cao.docx", tmp_path)
    assert document.title == "Báo cáo công tác Đảng năm 2025"
    assert document.date == "2025-06-12"
    assert "23 tổ chức cơ sở đảng" in document.text


def test_pdf_text_layer(tmp_path):
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(tmp_path / "report.pdf"))
    pdf.drawString(72, 760, "Bao cao so ket nam 2025")
    pdf.drawString(72, 740, "Ngay 11/7/2025, Dang uy to chuc hoi nghi so ket sau thang dau nam.")
    pdf.save()
    document = load_document(tmp_path / "report.pdf", tmp_path)
    assert document.title == "Bao cao so ket nam 2025"
    assert document.date == "2025-07-11"
    assert "hoi nghi so ket" in document.text


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("rong.txt", b"", "không có nội dung"),
        ("trang.txt", b"  \n\n ", "không có nội dung"),
        ("latin1.txt", "Báo cáo".encode("cp1258"), "UTF-8"),
        ("hong.docx", b"PK\x03\x04 not really a zip", ".docx"),
        ("hong.pdf", b"%PDF-1.4 garbage", "PDF"),
    ],
)
def test_broken_files_raise_a_clear_error(tmp_path, name, data, message):
    with pytest.raises(IngestError, match=message):
        load_document(write(tmp_path, name, data), tmp_path)


def test_discover_skips_hidden_and_unsupported(tmp_path):
    write(tmp_path, "a.txt", REPORT)
    write(tmp_path, "b.csv", "x,y")
    write(tmp_path, ".nhap.txt", REPORT)
    assert [p.name for p in discover(tmp_path)] == ["a.txt"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ngày 11/7/2018, Đảng ủy Khu kinh tế", "2018-07-11"),
        ("17:06 - 14/06/2018", "2018-06-14"),
        ("Sáng ngày 29/3/2024 tại hội trường", "2024-03-29"),
        ("1/18/23 5:48 PM", "2023-01-18"),
        ("11:29 05/11/2021 Chiều 3-11, đồng chí", "2021-11-05"),
        ("ngày 12 tháng 6 năm 2018", "2018-06-12"),
        ("Chiều 3-11, đồng chí", None),
    ],
)
def test_dates(text, expected):
    assert find_date(text) == expected


# --- the sample reports -------------------------------------------------------------------


def sample(name_part: str):
    path = next(p for p in REPORTS.iterdir() if name_part in p.name)
    return load_document(path, REPORTS)


def test_sample_report_cleaning_tails_and_widgets():
    hai_phong = sample("so-ket-6-thang")
    texts = [p.text for p in hai_phong.paragraphs]
    assert not any(t.startswith("Chia sẻ") for t in texts)
    assert "vietinbank" not in hai_phong.text
    assert texts[-1].endswith("UBND thành phố giao./.")

    tphcm = sample("tphcm")
    assert "Bài viết liên quan" not in tphcm.text
    assert tphcm.text.count("Ngày 12/10, Đảng ủy Ban Quản lý") == 1  # the cut-off teaser is gone
    assert tphcm.title.startswith("Hội nghị sơ kết công tác Đảng bộ 9 tháng")
    assert tphcm.text.count("Hội nghị sơ kết công tác Đảng bộ 9 tháng") == 0  # repeated title
    assert tphcm.date == "2023-01-18"

    can_tho = sample("can-tho")
    assert "Tin, ảnh" not in can_tho.text and not can_tho.text.rstrip().endswith("44")
    assert can_tho.date == "2018-06-14"

    khoi = sample("bi-thu")
    assert "Phấn đấu ngày 15/9" not in khoi.text  # related articles after the time stamps
    assert khoi.paragraphs[0].text.startswith("Chiều 3-11")  # stamp moved to the date
    assert khoi.date == "2021-11-05"


def test_sample_report_captions_and_paragraph_styles():
    can_tho = sample("can-tho")

    def kind_of(start: str) -> str:
        return next(p.kind for p in can_tho.paragraphs if p.text.startswith(start))

    assert kind_of("Đồng chí Mai Thanh Dân, Ủy viên") == CAPTION  # wrapped over two lines
    assert kind_of("Ngay sau khi thành lập (19/5/2016)") == BODY
    # Single-newline style: each line is a paragraph of its own.
    khoi = sample("bi-thu")
    assert len(khoi.paragraphs) >= 12
    assert khoi.paragraphs[1].kind == CAPTION
    ha_tinh = sample("ha-tinh")
    assert any(p.text == "Quang cảnh hội nghị" and p.kind == CAPTION for p in ha_tinh.paragraphs)
    assert "Đảng ủy Khu kinh tế Hải Phòng" in ha_tinh.text
    assert "uỷ" not in ha_tinh.text  # one tone-mark placement


# --- damaged and hostile files -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("xml-hong.docx", damaged.docx_broken_xml, "XML"),
        ("long-sau.docx", damaged.docx_deep_xml, "XML"),
        ("bom.docx", damaged.docx_zip_bomb, "giải nén"),
        ("nen-hong.docx", damaged.docx_corrupt_deflate, ".docx"),
        ("cut.docx", damaged.docx_truncated, ".docx"),
        ("cut.pdf", damaged.pdf_truncated, "PDF|pdf"),
    ],
)
def test_damaged_files_raise_ingest_error_with_a_vietnamese_reason(tmp_path, name, make, message):
    with pytest.raises(IngestError, match=message) as caught:
        load_document(write(tmp_path, name, make()), tmp_path)
    assert "Traceback" not in str(caught.value)


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    data = damaged.docx_zip_bomb(20)
    assert len(data) < 200_000  # 20 MB of XML in a small file
    started = time.perf_counter()
    with pytest.raises(IngestError, match="giải nén"):
        load_document(write(tmp_path, "bom.docx", data), tmp_path)
    assert time.perf_counter() - started < 5  # not a speed bench: a bomb would take ~54 s


def test_mutated_pdfs_either_load_or_raise_ingest_error(tmp_path):
    outcomes = {"loaded": 0, "refused": 0}
    for number, data in enumerate(damaged.pdf_mutations()):
        path = write(tmp_path, f"m{number}.pdf", data)
        try:
            load_document(path, tmp_path)
            outcomes["loaded"] += 1
        except IngestError:
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == 40


def test_deeply_nested_html_keeps_its_text(tmp_path):
    document = load_document(write(tmp_path, "long.html", damaged.nested_html(80)), tmp_path)
    assert set(document.text) == {"x"}
    assert len(document.text) == 80 * 1024 // 4


def test_html_past_the_depth_limit_still_closes_its_elements(tmp_path):
    page = (
        "<html><head><title>Tập huấn</title></head><body><nav>"
        + "<span>" * 300
        + "Trang chủ"
        + "</span>" * 300
        + "</nav><p>Ngày 5/9/2025, Ban Quản lý tổ chức lớp tập huấn an toàn lao động.</p>"
    )
    document = load_document(write(tmp_path, "sau.html", page), tmp_path)
    assert "tập huấn" in document.text
    assert "Trang chủ" not in document.text


def test_file_hash_follows_the_content_even_with_size_and_mtime_kept(tmp_path):
    """A file's hash is remembered by its stat stamp; a rewrite of the same size with its
    mtime set back must still be read again (ctime cannot be set back)."""
    import os
    import time

    from qabot import ingest
    from qabot.ingest import content_hash, file_hash

    path = tmp_path / "a.txt"
    path.write_bytes(b"first version")
    old = time.time() - 60
    os.utime(path, (old, old))
    # Old enough to be remembered: pretend the write happened long ago.
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    ingest._hashes[os.fspath(path)] = (stamp, content_hash(b"first version"))
    assert file_hash(path) == content_hash(b"first version")
    time.sleep(0.01)  # a later ctime tick
    path.write_bytes(b"other version")  # the same size
    os.utime(path, (old, old))  # and the same mtime
    assert file_hash(path) == content_hash(b"other version")
    # A file written just now is not remembered (its stamp could survive a rewrite).
    fresh = tmp_path / "b.txt"
    fresh.write_bytes(b"new")
    assert file_hash(fresh) == content_hash(b"new")
    assert os.fspath(fresh) not in ingest._hashes


def test_a_build_reads_only_the_files_changed_since_the_last_one(tmp_path, embedder, monkeypatch):
    """A build saves the folder's file hashes by stat stamp in the index folder, so the next
    build in a new process (the command line) reads only the files whose stamp changed:
    adding one report no longer reads the whole folder (0.9 GB at a million passages)."""
    from qabot import ingest
    from qabot.index import build_index

    monkeypatch.setattr(ingest, "RACY_SECONDS", 0)  # files written a moment ago are settled
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    body = "Đảng ủy Khu kinh tế tổ chức hội nghị sơ kết công tác năm 2024."
    for name in ("a.txt", "b.txt", "c.txt"):
        (docs / name).write_text(f"Báo cáo {name}\n\n{body}", encoding="utf-8")
    build_index(docs, index, embedder)
    assert (index / "file_hashes.json").is_file()

    hashed: list[bytes] = []
    real_hash = ingest.content_hash
    monkeypatch.setattr(ingest, "content_hash", lambda data: hashed.append(data) or real_hash(data))
    monkeypatch.setattr(ingest, "_hashes", {})  # a new process
    time.sleep(0.01)  # a later ctime tick
    changed = f"Báo cáo b.txt\n\n{body} Kết nạp 12 đảng viên mới.".encode()
    (docs / "b.txt").write_bytes(changed)
    summary = build_index(docs, index, embedder)
    assert (summary.changed, summary.unchanged) == (1, 2)
    assert set(hashed) == {changed}  # a.txt and c.txt were not read

    # A service started on this index checks an upload for duplicates the same way.
    from qabot.service import QAService

    monkeypatch.setattr(ingest, "_hashes", {})  # a new process
    hashed.clear()
    service = QAService(index, embedder, docs_dir=docs)
    try:
        uploaded = f"Báo cáo d.txt\n\n{body} Trao 5 giấy khen.".encode()
        added, summary = service.add_documents([("d.txt", uploaded)])
    finally:
        service.close()
    assert [a.doc_id for a in added] == ["d.txt"] and summary.added == 1
    assert set(hashed) == {uploaded}  # the reports already there were not read

    # A damaged hashes file costs reading every file again, nothing else.
    (index / "file_hashes.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setattr(ingest, "_hashes", {})
    hashed.clear()
    summary = build_index(docs, index, embedder)
    assert (summary.changed, summary.unchanged) == (0, 4)
    assert len(set(hashed)) == 4


def test_a_folder_scan_names_files_as_doc_id_for_does_and_survives_symlinks(tmp_path, embedder):
    """discover_ids resolves the folder once and a file only when it is a symlink; a symlink
    to a report outside the folder is known by its own path (resolving it made doc_id_for
    refuse it, and the build stopped with a stack trace)."""
    from qabot.ingest import discover, discover_ids, doc_id_for

    docs, outside = tmp_path / "docs", tmp_path / "outside"
    (docs / "2024" / "quý 1").mkdir(parents=True)
    (docs / ".hidden").mkdir()
    outside.mkdir()
    body = "Đảng ủy Khu kinh tế tổ chức hội nghị sơ kết công tác xây dựng Đảng năm 2024. " * 3
    (docs / "2024" / "quý 1" / "Báo cáo.txt").write_text(f"Báo cáo quý 1\n\n{body}", "utf-8")
    (docs / "a.txt").write_text(f"Báo cáo A\n\n{body}", encoding="utf-8")
    (docs / ".hidden" / "b.txt").write_text(f"Ẩn\n\n{body}", encoding="utf-8")
    (docs / "notes.bin").write_bytes(b"\x00")
    (outside / "c.txt").write_text(f"Báo cáo C\n\n{body}", encoding="utf-8")
    (docs / "c-link.txt").symlink_to(outside / "c.txt")
    (docs / "a-link.txt").symlink_to(docs / "a.txt")
    (docs / "folder-link").symlink_to(outside, target_is_directory=True)

    found = list(discover_ids(docs))
    assert [p for p, _ in found] == [
        docs.resolve() / "2024" / "quý 1" / "Báo cáo.txt",
        docs.resolve() / "a.txt",
        docs.resolve() / "c-link.txt",
    ]
    # A symlink to a file of the folder is that file: named once.
    assert [d for _, d in found] == ["2024/quý 1/Báo cáo.txt", "a.txt", "c-link.txt"]
    assert [p.name for p in discover(docs)] == ["Báo cáo.txt", "a-link.txt", "a.txt", "c-link.txt"]
    for path, doc_id in found[:2]:
        assert doc_id == doc_id_for(path, docs)

    from qabot.index import build_index, open_index

    summary = build_index(docs, tmp_path / "index", embedder)
    assert summary.documents == 3 and not summary.skipped_files
    index = open_index(tmp_path / "index")
    assert {d.doc_id for d in index.documents} == {"2024/quý 1/Báo cáo.txt", "a.txt", "c-link.txt"}
