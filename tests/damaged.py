"""Damaged and hostile files, made on the spot: what an unlucky admin or an attacker uploads."""

from __future__ import annotations

import io
import random
import zipfile

GOOD_TEXT = "Ngày 12/6/2025, Đảng ủy tổ chức hội nghị sơ kết công tác xây dựng Đảng."


def good_docx(text: str = GOOD_TEXT) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Báo cáo sơ kết công tác Đảng", level=1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _replace_member(data: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, content if item.filename == name else source.read(item))
    return out.getvalue()


def docx_broken_xml() -> bytes:
    """A real .docx whose document.xml stops in the middle of a tag."""
    data = good_docx()
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    return _replace_member(data, "word/document.xml", xml[: len(xml) // 2])


def docx_deep_xml(depth: int = 5000) -> bytes:
    """Elements nested thousands deep: small, but a recursion trap for XML readers."""
    data = good_docx()
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    head, _, tail = xml.partition("<w:body>")
    body = "<w:p>" * depth + "</w:p>" * depth
    return _replace_member(data, "word/document.xml", f"{head}<w:body>{body}{tail}".encode())


def docx_zip_bomb(expanded_mb: int = 20) -> bytes:
    """A .docx of a few dozen KB whose document.xml expands to ``expanded_mb`` MB."""
    data = good_docx()
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    head, _, tail = xml.partition("<w:body>")
    run = "<w:p><w:r><w:t>x</w:t></w:r></w:p>"
    body = run * (expanded_mb * 1024 * 1024 // len(run))
    return _replace_member(data, "word/document.xml", f"{head}<w:body>{body}{tail}".encode())


def docx_corrupt_deflate() -> bytes:
    """A .docx whose compressed document.xml bytes were overwritten (zlib fails on them)."""
    data = bytearray(good_docx())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("word/document.xml")
    # The member's data starts after its 30-byte local header, name and extra field.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for offset in range(start + 4, start + min(info.compress_size, 200), 3):
        data[offset] ^= 0x5A
    return bytes(data)


def docx_truncated() -> bytes:
    data = good_docx()
    return data[: len(data) * 2 // 3]


def good_pdf(text: str = "Ngay 11/7/2025, Dang uy to chuc hoi nghi so ket.") -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    pdf.drawString(72, 760, "Bao cao so ket nam 2025")
    pdf.drawString(72, 740, text)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def pdf_truncated() -> bytes:
    data = good_pdf()
    return data[: len(data) // 2]


def pdf_mutations(count: int = 40, seed: int = 18) -> list[bytes]:
    """Copies of a real PDF with a few bytes changed at random places (a fixed seed)."""
    rng = random.Random(seed)
    base = good_pdf()
    result = []
    for _ in range(count):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        result.append(bytes(data))
    return result


def nested_html(kilobytes: int, tag: str = "b") -> bytes:
    """Unclosed inline tags, each holding one letter: "<b>x<b>x..." (``kilobytes`` KB)."""
    unit = f"<{tag}>x".encode()
    return b"<html><body>" + unit * (kilobytes * 1024 // len(unit))
