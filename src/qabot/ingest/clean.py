"""Cleaning of scraped report text: page chrome out, paragraphs in.

Every rule here is general (how news pages are put together), never about one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qabot.ingest.dates import find_date, is_stamp_line, split_leading_stamp
from qabot.ingest.loaders import RawDocument
from qabot.text import ends_sentence, match_key, normalize, sentences

BODY = "body"
CAPTION = "caption"

_MAX_TITLE_CHARS = 250
_FALLBACK_TITLE_CHARS = 120
_MAX_CAPTION_CHARS = 130

_SHARE_WORDS = frozenset(
    {"chia", "sẻ", "share", "facebook", "twitter", "zalo", "email", "e-mail", "in", "bản", "bài",
     "gửi", "tweet", "like", "thích", "lưu", "bình", "luận", "copy", "link", "sao", "chép",
     "liên", "kết", "linkedin", "telegram", "messenger", "print", "save", ":"}
)  # fmt: skip
_RELATED_TAIL = re.compile(
    r"^(?:các\s+)?(?:tin|bài|bài viết|tin bài|tin tức)\s+(?:liên quan|khác|cùng chuyên mục|"
    r"cùng chủ đề|mới|mới nhất|đã đưa|đọc nhiều)\b|^(?:xem thêm|đọc thêm|related|"
    r"có thể bạn quan tâm)\b",
    re.IGNORECASE,
)
_BYLINE = re.compile(
    r"^(?:tin|ảnh|tin,? ảnh|tin và ảnh|bài,? ảnh|bài và ảnh|bài|thực hiện|nguồn|theo|"
    r"tác giả|phóng viên|nhóm pv)\s*:",
    re.IGNORECASE,
)
_LONE_NUMBER = re.compile(r"^[\d.,\s]+$|^[\W_]+$")
_ENUMERATED = re.compile(
    r"^(?:[IVXLC]+|\d+|[a-zđ])[.)/]|^[+\-•*–]\s|^(?:phần|chương|mục)\s+\w+", re.I
)
_TEASER_END = re.compile(r"(?:\.{3}|…)\s*$")


@dataclass(frozen=True)
class CleanText:
    title: str | None
    date: str | None
    paragraphs: tuple[tuple[str, str], ...]  # (text, kind)


def _tidy(line: str) -> str:
    return " ".join(line.split())


def _is_share_widget(line: str) -> bool:
    words = re.findall(r"[^\s:]+|:", line.lower())
    return 0 < len(words) <= 6 and all(w in _SHARE_WORDS for w in words)


def _is_tail_junk(line: str) -> bool:
    """Signatures, bylines, widgets and other short unpunctuated lines that end a page."""
    if _BYLINE.match(line) or _is_share_widget(line) or _LONE_NUMBER.match(line):
        return True
    return len(line) <= 60 and not ends_sentence(line)


def _blocks(lines: list[str]) -> list[list[str]]:
    """Runs of non-empty lines separated by blank lines."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _paragraphs_of_block(block: list[str]) -> list[tuple[str, int]]:
    """A block's paragraphs with the number of lines each joined.

    Lines become one paragraph when a line stops mid-sentence and the next goes on in lower
    case (hard-wrapped text); lines that are whole sentences stay separate paragraphs.
    """
    result: list[tuple[str, int]] = []
    for line in block:
        if result:
            previous, count = result[-1]
            if not ends_sentence(previous) and line[:1].islower():
                result[-1] = (f"{previous} {line}", count + 1)
                continue
        result.append((line, 1))
    return result


def _is_caption(text: str, lines_joined: int, title_key: str) -> bool:
    if len(text) > _MAX_CAPTION_CHARS or len(text.split()) < 2 or match_key(text) == title_key:
        return False
    if _ENUMERATED.match(text) or not text[:1].isupper():
        return False
    if not ends_sentence(text):
        return True
    # A short single sentence wrapped over two lines is how captions under photos look.
    return lines_joined == 2 and len(sentences(text)) == 1


def clean(raw: RawDocument) -> CleanText:
    lines = [_tidy(normalize(line)) for line in raw.text.splitlines()]
    captions = {match_key(normalize(c)) for c in raw.captions}

    # Title: the loader's, else a short first line.
    title = _tidy(normalize(raw.title)) if raw.title else None
    first = next((i for i, line in enumerate(lines) if line), None)
    if title is None and first is not None:
        candidate = lines[first]
        if len(candidate) <= _MAX_TITLE_CHARS and not is_stamp_line(candidate):
            title = candidate.rstrip(".")
    title_key = match_key(title) if title else ""

    # Header stamps and the related-articles tail.
    stamps: list[str] = []
    kept: list[str] = []
    body_chars = 0
    for line in lines:
        if not line:
            kept.append(line)
            continue
        if _RELATED_TAIL.match(line) and len(line) <= 80:
            break
        if is_stamp_line(line):
            if body_chars >= 400:  # a date list after the body: teasers of other articles
                break
            stamps.append(line)
            continue
        if not kept or not any(kept):
            stamp, line = split_leading_stamp(line)
            if stamp:
                stamps.append(stamp)
        if title_key and match_key(line.rstrip(".")) == title_key:
            continue  # the title, as its own line or repeated under the date
        if _is_share_widget(line) or _LONE_NUMBER.match(line):
            continue
        kept.append(line)
        body_chars += len(line)

    # Signatures, bylines and widgets at the very end.
    while kept and (not kept[-1] or _is_tail_junk(kept[-1])):
        kept.pop()

    paragraphs: list[tuple[str, int]] = []
    for block in _blocks(kept):
        paragraphs.extend(_paragraphs_of_block(block))

    # Teasers: a lead cut off with "..." that the next paragraphs repeat in full.
    texts = [p for p, _ in paragraphs]
    deduplicated: list[tuple[str, int]] = []
    for i, (text, count) in enumerate(paragraphs):
        stem = _TEASER_END.sub("", text)
        if (
            _TEASER_END.search(text)
            and len(stem) >= 40
            and any(other.startswith(stem) and len(other) > len(stem) for other in texts[i + 1 :])
        ):
            continue
        deduplicated.append((text, count))

    result = tuple(
        (
            text,
            CAPTION if match_key(text) in captions or _is_caption(text, count, title_key) else BODY,
        )
        for text, count in deduplicated
    )

    if title is None and result:
        title = _fallback_title(result[0][0])
    date = _iso_or_none(raw.date) or find_date(
        "\n".join(stamps) + "\n" + "\n".join(text for text, _ in result[:3])[:800]
    )
    return CleanText(title=title, date=date, paragraphs=result)


def _fallback_title(text: str) -> str:
    first = sentences(text)[0] if text else text
    if len(first) <= _FALLBACK_TITLE_CHARS:
        return first.rstrip(".")
    cut = first[:_FALLBACK_TITLE_CHARS]
    # End on a clause when one ends late enough, else on a word.
    clause = max(cut.rfind(","), cut.rfind(";"))
    cut = cut[:clause] if clause >= _FALLBACK_TITLE_CHARS // 2 else cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:- ") + "…"


def _iso_or_none(value: str | None) -> str | None:
    if not value:
        return None
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", value.strip())
    return "-".join(m.groups()) if m else find_date(value)
