"""One loader per file format: bytes on disk -> raw text plus what the format says about it.

Loaders only extract; cleaning and paragraph splitting happen in ``clean`` so every format
is treated alike. Every file is untrusted (uploads): a loader either returns text or raises
IngestError with a Vietnamese reason, never anything else, and its work is bounded (expanded
size of a .docx, nesting depth, parse time), so one bad file cannot stop a build.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from qabot.errors import IngestError

log = logging.getLogger(__name__)

# The upload limit is 10 MB; these bound what such a file may cost to read.
MAX_PARSE_SECONDS = 10.0
MAX_DOCX_MEMBERS = 2000  # a long report with many images has a few hundred
MAX_DOCX_EXPANDED_BYTES = 64 * 1024 * 1024  # every member, uncompressed (images included)
MAX_DOCX_XML_BYTES = 12 * 1024 * 1024  # XML parts, uncompressed: ~1,500 pages of text
MAX_DOCX_RATIO = 100  # XML compresses 5-20x; a zip bomb, thousands of times
MAX_HTML_DEPTH = 256  # open elements kept; deeper ones are read as flat text


class _Deadline:
    """A parse-time budget, checked between units of work (HTML chunks, paragraphs, pages)."""

    def __init__(self, seconds: float = MAX_PARSE_SECONDS) -> None:
        self.seconds = seconds
        self.until = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.until:
            raise IngestError(
                f"tệp cần hơn {self.seconds:g} giây để đọc nên không được nhận "
                "(cấu trúc quá phức tạp)"
            )


@dataclass(frozen=True)
class RawDocument:
    text: str
    title: str | None = None
    date: str | None = None
    captions: frozenset[str] = field(default_factory=frozenset)


def load_text(data: bytes, *, markdown: bool = False) -> RawDocument:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"tệp không phải văn bản UTF-8 (byte 0x{data[exc.start]:02x} ở vị trí {exc.start})"
        ) from None
    meta, text = _split_front_matter(text)
    title = meta.get("title")
    if markdown:
        text, md_title = _strip_markdown(text)
        title = title or md_title
    return RawDocument(text=text, title=title, date=meta.get("date"))


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Optional "---\\ntitle: ...\\ndate: ...\\n---" header, as in static-site markdown."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[m.end() :]


def _strip_markdown(text: str) -> tuple[str, str | None]:
    title = None
    lines = []
    for line in text.splitlines():
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            line = heading.group(1)
            if title is None and line.strip():
                title = line.strip()
        line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", line)  # images: keep alt text
        line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # links: keep their text
        line = re.sub(r"(\*\*|__|`)", "", line)
        line = re.sub(r"^\s*>\s?", "", line)
        lines.append(line)
    return "\n".join(lines), title


# --- HTML --------------------------------------------------------------------------------

_SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "iframe", "form", "button", "select",
     "nav", "header", "footer", "aside", "menu"}
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "main", "li", "ul", "ol", "tr", "table", "blockquote",
     "h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption", "br", "hr", "dd", "dt", "pre"}
)  # fmt: skip
_VOID_TAGS = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "source"})


@dataclass
class _Open:
    tag: str
    skip: bool
    article: bool
    caption: bool


class _ArticleParser(HTMLParser):
    """Collects block texts, ignoring page chrome; remembers captions and metadata.

    Linear in the size of the page: what the open elements imply (inside a skipped element,
    an article, a caption, the title, an h1) is kept as counters, and each tag's open count,
    so no event looks through the whole stack (unclosed tags make it as deep as the page is
    long: 80 KB of "<b>x" took 29 s when it did).
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Open] = []
        self.open_tags: dict[str, int] = {}  # tag -> how many are on the stack
        self.flags = {"skip": 0, "article": 0, "caption": 0}  # open elements with the flag
        self.overflow: list[str] = []  # tags opened past MAX_HTML_DEPTH, not tracked
        self.blocks: list[tuple[str, bool, bool]] = []  # (text, in_article, is_caption)
        self.current: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.meta: dict[str, str] = {}
        self.time_attr: str | None = None

    def _inside(self, flag: str) -> bool:
        return self.flags[flag] > 0

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append((text, self._inside("article"), self._inside("caption")))
        self.current = []

    def _push(self, entry: _Open) -> None:
        self.stack.append(entry)
        self.open_tags[entry.tag] = self.open_tags.get(entry.tag, 0) + 1
        for flag in self.flags:
            if getattr(entry, flag):
                self.flags[flag] += 1

    def _pop(self) -> _Open:
        entry = self.stack.pop()
        self.open_tags[entry.tag] -= 1
        for flag in self.flags:
            if getattr(entry, flag):
                self.flags[flag] -= 1
        return entry

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "meta":
            key = attributes.get("property") or attributes.get("name") or ""
            if key and "content" in attributes:
                self.meta[key.lower()] = attributes["content"]
            return
        if tag == "time" and "datetime" in attributes and self.time_attr is None:
            self.time_attr = attributes["datetime"]
        if tag in _VOID_TAGS:
            if tag in ("br", "hr"):
                self._flush()
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        if len(self.stack) >= MAX_HTML_DEPTH:
            self.overflow.append(tag)
            return
        self._push(
            _Open(
                tag=tag,
                skip=tag in _SKIP_TAGS or _looks_like_chrome(attributes),
                article=tag in ("article", "main"),
                caption=tag == "figcaption" or "caption" in attributes.get("class", "").lower(),
            )
        )

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        if self.overflow:
            if tag in _BLOCK_TAGS:
                self._flush()
            if self.overflow[-1] == tag:
                self.overflow.pop()
            return
        if not self.open_tags.get(tag):
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        while self.stack:
            if self._pop().tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if self.open_tags.get("title"):
            self.title_parts.append(data)
            return
        if self._inside("skip"):
            return
        self.current.append(data)
        if self.open_tags.get("h1"):
            self.h1_parts.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


_CHROME_HINTS = re.compile(
    r"(^|[\s_-])(nav|navbar|menu|breadcrumbs?|sidebar|footer|header|share|social|related|"
    r"comments?|advert|ads|banner|cookie|popup|subscribe|tags)($|[\s_-])",
    re.IGNORECASE,
)


def _looks_like_chrome(attributes: dict[str, str]) -> bool:
    hint = f"{attributes.get('class', '')} {attributes.get('id', '')} {attributes.get('role', '')}"
    return bool(_CHROME_HINTS.search(hint))


_HTML_CHUNK = 64 * 1024


def load_html(data: bytes) -> RawDocument:
    text = data.decode("utf-8", errors="replace")
    parser = _ArticleParser()
    deadline = _Deadline()
    # Fed in chunks so the time budget is checked while the page is read.
    for start in range(0, len(text), _HTML_CHUNK):
        parser.feed(text[start : start + _HTML_CHUNK])
        deadline.check()
    parser.close()
    blocks = parser.blocks
    if any(in_article for _, in_article, _ in blocks):
        blocks = [b for b in blocks if b[1]]
    title = (
        parser.meta.get("og:title")
        or " ".join("".join(parser.h1_parts).split())
        or " ".join("".join(parser.title_parts).split())
        or None
    )
    date = parser.meta.get("article:published_time") or parser.time_attr
    captions = frozenset(text for text, _, is_caption in blocks if is_caption)
    body = "\n\n".join(text for text, _, _ in blocks)
    return RawDocument(text=body, title=title, date=(date or None), captions=captions)


# --- DOCX and PDF ------------------------------------------------------------------------


def _check_docx_archive(data: bytes) -> None:
    """Refuse a .docx that would expand into far more than it holds (a zip bomb) before
    anything is decompressed: the sizes come from the archive's directory, and zipfile never
    returns more than a member's declared size."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        raise IngestError("tệp .docx bị hỏng (không phải tệp nén ZIP hợp lệ)") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_DOCX_MEMBERS:
            raise IngestError(
                f"tệp .docx chứa {len(members)} thành phần, vượt giới hạn {MAX_DOCX_MEMBERS}"
            )
        expanded = sum(m.file_size for m in members)
        xml = sum(m.file_size for m in members if m.filename.lower().endswith((".xml", ".rels")))
        if expanded > MAX_DOCX_EXPANDED_BYTES:
            raise IngestError(
                f"tệp .docx khi giải nén lớn tới {_mb(expanded)}, "
                f"vượt giới hạn {_mb(MAX_DOCX_EXPANDED_BYTES)}"
            )
        if xml > MAX_DOCX_XML_BYTES:
            raise IngestError(
                f"phần văn bản của tệp .docx khi giải nén lớn tới {_mb(xml)}, "
                f"vượt giới hạn {_mb(MAX_DOCX_XML_BYTES)}"
            )
        for member in members:
            if member.file_size > 1024 * 1024 and (
                member.file_size > MAX_DOCX_RATIO * max(member.compress_size, 1)
            ):
                raise IngestError(
                    f"tệp .docx có thành phần {member.filename} nén bất thường "
                    f"({_mb(member.compress_size)} thành {_mb(member.file_size)}); "
                    "nghi là tệp nén độc hại"
                )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def load_docx(data: bytes) -> RawDocument:
    import docx  # python-docx; imported here so text-only use stays light

    _check_docx_archive(data)
    deadline = _Deadline()
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        log.info("reading a .docx file failed: %r", exc)
        raise IngestError("tệp .docx bị hỏng hoặc thiếu thành phần") from None
    except SyntaxError as exc:  # lxml's XMLSyntaxError, including nesting deeper than 256
        log.info("reading a .docx file failed: %r", exc)
        raise IngestError(
            "tệp .docx có nội dung XML hỏng hoặc lồng nhau quá sâu (quá 256 cấp)"
        ) from None
    deadline.check()
    paragraphs, captions = [], set()
    title = None
    for number, paragraph in enumerate(document.paragraphs):
        if number % 256 == 0:
            deadline.check()
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "").lower()
        if style == "title" or (style.startswith("heading") and title is None):
            title = title or text
        if style == "caption":
            captions.add(text)
        paragraphs.append(text)
    for table in document.tables:
        deadline.check()
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                paragraphs.append(" | ".join(dict.fromkeys(cells)))
    core_title = (document.core_properties.title or "").strip()
    return RawDocument(
        text="\n\n".join(paragraphs), title=core_title or title, captions=frozenset(captions)
    )


def load_pdf(data: bytes) -> RawDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    deadline = _Deadline()
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError("tệp PDF được đặt mật khẩu nên không đọc được")
        pages = []
        for page in reader.pages:
            deadline.check()
            pages.append(page.extract_text() or "")
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        log.info("reading a PDF file failed: %r", exc)
        raise IngestError("tệp PDF bị hỏng hoặc không đọc được") from None
    if meta_title and _PLACEHOLDER_TITLE.match(meta_title.strip()):
        meta_title = None  # what PDF writers put there when nobody set a title
    return RawDocument(text="\n\n".join(pages), title=meta_title)


_PLACEHOLDER_TITLE = re.compile(
    r"^(untitled|document\d*|microsoft word\b.*|\(?anonymous\)?)?$", re.I
)


LOADERS = {
    ".txt": lambda data: load_text(data),
    ".md": lambda data: load_text(data, markdown=True),
    ".markdown": lambda data: load_text(data, markdown=True),
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".pdf": load_pdf,
}
SUPPORTED_SUFFIXES = frozenset(LOADERS)


def load_raw(path: Path) -> RawDocument:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(f"không hỗ trợ loại tệp {path.suffix or '(không có đuôi)'}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"không đọc được tệp ({exc.strerror})") from None
    return guarded(loader, data, path.suffix.lower())


def guarded(loader: Callable[[bytes], RawDocument], data: bytes, kind: str) -> RawDocument:
    """Run a loader so that whatever goes wrong inside a parser (lxml, zlib, pypdf...) comes
    out as IngestError: a damaged file is the file's problem, never the caller's crash."""
    try:
        return loader(data)
    except IngestError:
        raise
    except MemoryError:
        raise IngestError("tệp cần quá nhiều bộ nhớ để đọc nên không được nhận") from None
    except RecursionError:
        raise IngestError("tệp có cấu trúc lồng nhau quá sâu nên không đọc được") from None
    except Exception as exc:
        log.info("reading a %s file failed: %r", kind, exc)
        raise IngestError(
            f"tệp {kind} bị hỏng hoặc không đọc được (lỗi {type(exc).__name__})"
        ) from None
