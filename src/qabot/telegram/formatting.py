"""Pure functions from answers, documents and paragraphs to Telegram HTML messages.

Every piece of document or user text goes through ``html.escape``; the only markup is the
few tags written here. Nothing in this module talks to Telegram or to the service.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from qabot.messages import INTERNAL_ERROR, NOT_FOUND, NOT_READY
from qabot.service import Answer, CitedPassage, DocumentInfo, DocumentPage, ParagraphContext

MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one text message
WELCOME_DOCUMENTS = 5  # reports listed by /start before pointing to /baocao
DOCUMENTS_PAGE = 15  # reports on one page of /baocao: a screen of a phone
EXPAND_AFTER = 600  # characters of a cited passage shown in a folded (expandable) quote

NOT_FOUND_HINT = (
    "Bạn có thể thử diễn đạt lại câu hỏi, nêu cụ thể hơn (tên đơn vị, thời gian, chỉ tiêu…) "
    "hoặc xem danh sách báo cáo bằng lệnh /baocao."
)
NO_MORE = "Không còn đoạn trích liên quan nào khác cho câu hỏi này."
APOLOGY = INTERNAL_ERROR
REFUSAL = (
    "Xin lỗi, bot này chỉ phục vụ các nhóm và người dùng đã được cấp quyền. "
    "Vui lòng liên hệ quản trị viên nếu bạn cần sử dụng."
)
ADMIN_ONLY_UPLOAD = "Xin lỗi, chỉ quản trị viên mới có thể thêm tài liệu vào thư viện."
ADMIN_ONLY_REINDEX = "Xin lỗi, chỉ quản trị viên mới có thể cập nhật chỉ mục."
ASK_USAGE = "Vui lòng nhập câu hỏi sau lệnh, ví dụ: /ask Đảng bộ có bao nhiêu đảng viên?"
UNKNOWN_COMMAND = "Xin lỗi, tôi không hiểu lệnh này. Gõ /help để xem hướng dẫn."
EXPIRED = "Câu hỏi này đã cũ, vui lòng gửi lại câu hỏi."
LIST_EXPIRED = "Danh sách này đã cũ, vui lòng gõ lại lệnh /baocao."
SOURCE_GONE = "Không còn tìm thấy đoạn này; có thể báo cáo đã được cập nhật. Vui lòng hỏi lại."
ADDING = "Đang thêm tệp {name} và cập nhật chỉ mục, vui lòng chờ…"
DOWNLOAD_FAILED = "Không tải được tệp từ Telegram. Vui lòng gửi lại sau ít phút."
REINDEXING = "Đang cập nhật chỉ mục, vui lòng chờ…"


def escape(text: str) -> str:
    """Text as HTML character data: &, < and > escaped (quotes need no escaping there)."""
    return html.escape(text, quote=False)


def format_date(date: str | None) -> str:
    """ISO "2018-07-11" as the Vietnamese "11/07/2018"; other values as they are."""
    if not date:
        return "không rõ ngày"
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", date.strip())
    if match is None:
        return date
    year, month, day = match.groups()
    return f"{day}/{month}/{year}"


def highlight(text: str, span: tuple[int, int] | None) -> str:
    """Escaped text with the characters of ``span`` in bold (when the span is valid)."""
    if span is None:
        return escape(text)
    start, end = span
    if not 0 <= start < end <= len(text):
        return escape(text)
    return f"{escape(text[:start])}<b>{escape(text[start:end])}</b>{escape(text[end:])}"


def _passage_text(passage: CitedPassage) -> str:
    """The passage without surrounding blank space, the highlight moved along."""
    text = passage.text
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    span = passage.highlight
    if span is not None:
        start = max(0, span[0] - lead)
        end = min(len(stripped), span[1] - lead)
        span = (start, end) if start < end else None
    return highlight(stripped, span)


def source_heading(number: int, title: str, date: str | None, paragraph: int) -> str:
    return (
        f"<b>[{number}]</b> <i>{escape(title)}</i> — {escape(format_date(date))}, đoạn {paragraph}"
    )


def format_sources(passages: Sequence[CitedPassage], first_number: int = 1) -> str:
    """Numbered sources: title, date and paragraph, then the cited passage text."""
    blocks = []
    for number, passage in enumerate(passages, start=first_number):
        heading = source_heading(number, passage.title, passage.date, passage.paragraph)
        # Long passages start folded, so the sources fit on a phone screen.
        opening = "<blockquote expandable>" if len(passage.text) > EXPAND_AFTER else "<blockquote>"
        blocks.append(f"{heading}\n{opening}{_passage_text(passage)}</blockquote>")
    return "\n\n".join(blocks)


def interpreted_line(answer: Answer) -> str | None:
    """ "🔎 Hiểu là: …" when the question searched is not the one typed (a follow-up made
    self-contained, diacritics restored); None otherwise."""
    interpreted = answer.interpreted_question
    if not interpreted or " ".join(interpreted.split()) == " ".join(answer.question.split()):
        return None
    return f"🔎 <i>Hiểu là:</i> {escape(interpreted)}"


def format_answer(
    answer: Answer, passages: Sequence[CitedPassage], *, echo_question: bool = False
) -> str:
    """One reply: the short answer, then the numbered sources. Not for answers not found."""
    parts = []
    if echo_question:
        parts.append(f"❓ <b>Câu hỏi:</b> {escape(answer.question)}")
    if line := interpreted_line(answer):
        parts.append(line)
    if answer.answer:
        parts.append(f"💡 <b>Trả lời:</b> {escape(answer.answer)}")
    else:
        parts.append("💡 <b>Các đoạn trích liên quan nhất:</b>")
    if passages:
        parts.append(f"📚 <b>Nguồn trích dẫn:</b>\n\n{format_sources(passages)}")
    return "\n\n".join(parts)


def format_not_found(question: str | None = None, *, hint: str | None = None) -> str:
    """Not found, with the service's hint when it has one (e.g. write in Vietnamese), else
    how to ask better."""
    text = f"{NOT_FOUND}\n{escape(hint or NOT_FOUND_HINT)}"
    if question:
        text = f"❓ <b>Câu hỏi:</b> {escape(question)}\n\n{text}"
    return text


def format_more(question: str, passages: Sequence[CitedPassage], first_number: int) -> str:
    """The next page of sources for a question asked before."""
    return (
        f"📚 <b>Các đoạn trích tiếp theo cho câu hỏi:</b> {escape(question)}\n\n"
        f"{format_sources(passages, first_number)}"
    )


def cited_paragraphs(context: ParagraphContext, passage_text: str) -> range:
    """The paragraphs a passage covers: it starts in ``context.paragraph`` and, when short
    paragraphs (headings) were joined to the next ones, runs into the following paragraphs."""
    last = context.paragraph
    for record in context.paragraphs:
        text = record.text.strip()
        if record.number > last and text and text in passage_text:
            last = record.number
    return range(context.paragraph, last + 1)


def _emphasised(text: str, emphasis: str | None) -> str:
    at = text.find(emphasis) if emphasis else -1
    if emphasis is None or at < 0:
        return escape(text)
    return highlight(text, (at, at + len(emphasis)))


def format_context(
    context: ParagraphContext, cited: range | None = None, emphasis: str | None = None
) -> str:
    """The cited paragraphs with one neighbour on each side; the cited ones stand out, with
    ``emphasis`` (the short answer) in bold where it occurs."""
    cited = cited or range(context.paragraph, context.paragraph + 1)
    document = context.document
    total = document.paragraphs
    label = f"{cited[0]}–{cited[-1]}" if len(cited) > 1 else f"{cited[0]}"
    lines = [
        f"📄 <b>{escape(document.title)}</b>",
        f"{escape(format_date(document.date))} · {escape(document.source)}",
    ]
    quoted = [r for r in context.paragraphs if r.number in cited]
    before = [r for r in context.paragraphs if r.number == cited[0] - 1]
    after = [r for r in context.paragraphs if r.number == cited[-1] + 1]
    for record in before:
        lines.append(f"<i>Đoạn {record.number}/{total}</i>\n{escape(record.text.strip())}")
    if quoted:
        body = "\n\n".join(_emphasised(r.text.strip(), emphasis) for r in quoted)
        lines.append(
            f"<b>▶ Đoạn {label}/{total} (được trích dẫn)</b>\n<blockquote>{body}</blockquote>"
        )
    for record in after:
        lines.append(f"<i>Đoạn {record.number}/{total}</i>\n{escape(record.text.strip())}")
    return "\n\n".join(lines)


def document_line(document: DocumentInfo) -> str:
    return f"• {escape(document.title)} ({escape(format_date(document.date))})"


def _vi_number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def format_documents(page: DocumentPage) -> str:
    """A page of /baocao (newest first), with where it is in the list and how to narrow it."""
    query = escape(page.query)
    if not page.total:
        if page.query:
            return (
                f"Không có báo cáo nào khớp «{query}». Bạn có thể thử từ khóa khác "
                "hoặc gõ /baocao để xem tất cả."
            )
        return "Hiện chưa có báo cáo nào trong thư viện."
    total = _vi_number(page.total)
    if page.query:
        heading = f"🔎 <b>Có {total} báo cáo khớp «{query}»</b> (mới nhất trước):"
    else:
        heading = f"📚 <b>Thư viện hiện có {total} báo cáo</b> (mới nhất trước):"
    lines = [heading, ""]
    lines += [document_line(d) for d in page.documents]
    if len(page.documents) < page.total:
        first, last = page.offset + 1, page.offset + len(page.documents)
        shown = _vi_number(first) if first == last else f"{_vi_number(first)}–{_vi_number(last)}"
        lines += ["", f"<i>Báo cáo {shown} trong {total}.</i>"]
        if not page.query:
            lines.append("Gõ /baocao &lt;từ khóa&gt; để tìm theo tên hoặc năm, ví dụ: /baocao 2024")
    return "\n".join(lines)


def format_welcome(
    first_name: str | None,
    documents: DocumentPage | None,
    bot_username: str | None,
    has_examples: bool,
) -> str:
    """/start and /help: greeting, what the bot knows, how to ask."""
    greeting = f"Xin chào {escape(first_name)}!" if first_name else "Xin chào!"
    parts = [
        f"👋 <b>{greeting}</b>\n"
        "Tôi là trợ lý hỏi đáp trên các báo cáo của tổ chức. Tôi tìm câu trả lời trong các "
        "báo cáo đã được nạp và luôn kèm đoạn trích dẫn nguồn để bạn đối chiếu."
    ]
    if documents is None:
        parts.append(NOT_READY)
    elif not documents.total:
        parts.append("Hiện chưa có báo cáo nào trong thư viện.")
    else:
        shown = documents.documents[:WELCOME_DOCUMENTS]
        lines = [f"📚 <b>Hiện có {_vi_number(documents.total)} báo cáo</b>, mới nhất:"]
        lines += [document_line(d) for d in shown]
        if documents.total > len(shown):
            others = _vi_number(documents.total - len(shown))
            lines.append(f"… và {others} báo cáo khác (xem /baocao).")
        else:
            lines.append("Xem danh sách đầy đủ bằng lệnh /baocao.")
        parts.append("\n".join(lines))
    mention = f", nhắc đến @{escape(bot_username)}" if bot_username else ""
    parts.append(
        "❓ <b>Cách hỏi:</b> gửi câu hỏi bằng tiếng Việt có dấu, càng cụ thể càng tốt. "
        f"Trong nhóm, hãy dùng /ask &lt;câu hỏi&gt;{mention} hoặc trả lời tin nhắn của tôi."
    )
    if has_examples:
        parts.append("Bạn có thể bấm một câu hỏi gợi ý dưới đây:")
    return "\n\n".join(parts)


def format_rate_limited(limit: int, wait_seconds: float) -> str:
    seconds = max(1, round(wait_seconds))
    return (
        f"Bạn đang hỏi hơi nhanh. Mỗi người có thể hỏi tối đa {limit} câu mỗi phút; "
        f"vui lòng thử lại sau khoảng {seconds} giây nhé."
    )


def format_added(document: DocumentInfo | None, file_name: str, reason: str | None = None) -> str:
    """The reply to an admin's upload, once the index has been updated."""
    if document is None:
        detail = f": {escape(reason)}" if reason else "."
        return f"⚠️ Đã lưu tệp {escape(file_name)} nhưng chưa đưa được vào chỉ mục{detail}"
    return (
        "✅ <b>Đã thêm tài liệu vào thư viện.</b>\n"
        f"Tiêu đề: {escape(document.title)}\n"
        f"Ngày: {escape(format_date(document.date))}\n"
        f"Số đoạn trích: {document.passages}"
    )


def format_reindexed(documents: int, passages: int, added: int, changed: int, removed: int) -> str:
    return (
        "✅ <b>Đã cập nhật chỉ mục.</b>\n"
        f"{documents} báo cáo, {passages} đoạn trích "
        f"({added} thêm, {changed} sửa, {removed} xóa)."
    )


# --- splitting long messages ------------------------------------------------------------

_TOKEN = re.compile(r"<[^>]*>|&[#\w]+;|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z0-9-]+)")


def text_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Cut:
    position: int  # in the text being split
    stack: tuple[str, ...]  # opening tags still open at the position


def _closers(stack: Sequence[str]) -> str:
    names = [_TAG_NAME.match(tag).group(1) for tag in stack]  # type: ignore[union-attr]
    return "".join(f"</{name}>" for name in reversed(names))


def _cut_points(text: str, budget: int, open_tags: Sequence[str] = ()) -> dict[str, _Cut]:
    """The furthest cut of each kind (paragraph, line, space, any) that fits in ``budget``
    once the open tags are closed; ``open_tags`` are open where ``text`` starts. Cuts never
    fall inside a tag or an entity."""
    best: dict[str, _Cut] = {}
    stack: list[str] = list(open_tags)
    used = 0  # UTF-16 units of text[:position]

    def consider(kind: str, position: int, used_at: int) -> bool:
        if used_at + text_length(_closers(stack)) > budget:
            return False
        best[kind] = _Cut(position, tuple(stack))
        return True

    for match in _TOKEN.finditer(text):
        token = match.group()
        start = match.start()
        if token.startswith("<") and len(token) > 1:
            closing = token.startswith("</")
            if closing and stack:
                stack.pop()
            elif not closing and not token.endswith("/>"):
                stack.append(token)
            used += text_length(token)
            if closing and not consider("any", match.end(), used):
                break
            continue
        if token in ("<", "&") or token.startswith("&"):
            consider("any", start, used)
            used += text_length(token)
            if not consider("any", match.end(), used):
                break
            continue
        # plain text: every character boundary is a possible cut
        overflow = False
        for offset, char in enumerate(token):
            position = start + offset
            if char == "\n" and text[position + 1 : position + 2] == "\n":
                consider("paragraph", position, used)
            if char == "\n":
                consider("line", position, used)
            elif char == " ":
                consider("space", position, used)
            if not consider("any", position, used):
                overflow = True
                break
            used += text_length(char)
        if overflow:
            break
        consider("any", match.end(), used)
    return best


def split_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Split an HTML message into parts of at most ``limit`` characters.

    Cuts at paragraph boundaries (blank lines) when possible, then at line breaks, then at
    spaces, and only as a last resort anywhere in the text; never inside a tag or an entity.
    Tags open at a cut are closed at the end of one part and opened again in the next.
    """
    text = text.strip()
    if text_length(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    carried: tuple[str, ...] = ()  # tags open at the end of the previous part
    rest = text
    while rest:
        prefix = "".join(carried)
        if text_length(prefix + rest) <= limit:
            parts.append(prefix + rest)
            break
        budget = limit - text_length(prefix)
        cuts = _cut_points(rest, budget, carried)
        cut = None
        for kind in ("paragraph", "line", "space"):
            candidate = cuts.get(kind)
            if candidate is not None and candidate.position >= budget // 3:
                cut = candidate
                break
        if cut is None:
            cut = cuts.get("any")
        if cut is None or cut.position == 0:
            raise ValueError(f"cannot split the message into parts of {limit} characters")
        head = rest[: cut.position].rstrip()
        parts.append(prefix + head + _closers(cut.stack))
        carried = cut.stack
        rest = rest[cut.position :].lstrip(" \n")
    return [part for part in parts if _visible(part)]


def _visible(part: str) -> bool:
    """Whether a part has any text once tags are removed."""
    return bool(re.sub(r"<[^>]*>", "", part).strip())


NEW_CONVERSATION = "🆕 Đã bắt đầu cuộc trò chuyện mới. Mời bạn đặt câu hỏi."
