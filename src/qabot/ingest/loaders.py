"""One loader per file format: bytes on disk -> raw text plus what the format says about it.

Loaders only extract; cleaning and paragraph splitting happen in ``clean`` so every format
is treated alike.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from qabot.errors import IngestError


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
            f"không phải văn bản UTF-8 (byte 0x{data[exc.start]:02x} ở vị trí {exc.start})"
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
    """Collects block texts, ignoring page chrome; remembers captions and metadata."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Open] = []
        self.blocks: list[tuple[str, bool, bool]] = []  # (text, in_article, is_caption)
        self.current: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self.meta: dict[str, str] = {}
        self.time_attr: str | None = None

    def _inside(self, flag: str) -> bool:
        return any(getattr(entry, flag) for entry in self.stack)

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append((text, self._inside("article"), self._inside("caption")))
        self.current = []

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
        self.stack.append(
            _Open(
                tag=tag,
                skip=tag in _SKIP_TAGS or _looks_like_chrome(attributes),
                article=tag in ("article", "main"),
                caption=tag == "figcaption" or "caption" in attributes.get("class", "").lower(),
            )
        )

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS or all(entry.tag != tag for entry in self.stack):
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        while self.stack:
            entry = self.stack.pop()
            if entry.tag == tag:
                return

    def handle_data(self, data: str) -> None:
        tags = [entry.tag for entry in self.stack]
        if "title" in tags:
            self.title_parts.append(data)
            return
        if self._inside("skip"):
            return
        self.current.append(data)
        if "h1" in tags:
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


def load_html(data: bytes) -> RawDocument:
    text = data.decode("utf-8", errors="replace")
    parser = _ArticleParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; this guards odd edge cases
        raise IngestError("không đọc được nội dung HTML") from exc
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


def load_docx(data: bytes) -> RawDocument:
    import docx  # python-docx; imported here so text-only use stays light

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError("không phải tệp .docx đọc được") from exc
    paragraphs, captions = [], set()
    title = None
    for paragraph in document.paragraphs:
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

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise IngestError("không phải tệp PDF đọc được") from exc
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
    return loader(path.read_bytes())
