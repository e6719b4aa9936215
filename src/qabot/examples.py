"""Example questions to offer people (the bot's /start, the web page), derived from the
library: generic questions about the reports, kept only when the indexed documents can
answer them, then questions about the reports' own titles. No facts of a particular corpus
are written here. ``QAService.example_questions`` is how interfaces get them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

EXAMPLE_COUNT = 3
TITLE_WORDS = 10

GENERIC = (
    "Đảng bộ có bao nhiêu đảng viên?",
    "Có bao nhiêu tổ chức cơ sở đảng trực thuộc?",
    "Kết nạp được bao nhiêu đảng viên mới?",
    "Những khó khăn, hạn chế là gì?",
    "Phương hướng, nhiệm vụ thời gian tới là gì?",
    "Có bao nhiêu doanh nghiệp có tổ chức đảng?",
)


def title_question(title: str) -> str:
    """A question about one report, from the first words of its title."""
    words = title.replace("…", " ").split()
    short = " ".join(words[:TITLE_WORDS]).rstrip(" ,.;:-–")
    if len(words) > TITLE_WORDS:
        short += "…"
    return f"{short}: có những nội dung chính nào?"


def choose_examples(
    answerable: Callable[[str], bool],
    titles: Iterable[str] = (),
    generic: Sequence[str] = GENERIC,
    count: int = EXAMPLE_COUNT,
) -> list[str]:
    """Up to ``count`` questions: answerable generic ones first, then answerable questions
    about report titles, then unchecked title questions to make up the number."""
    from_titles = [title_question(t) for t in titles]
    chosen: list[str] = []
    for question in [*generic, *from_titles]:
        if len(chosen) == count:
            return chosen
        if question not in chosen and answerable(question):
            chosen.append(question)
    for question in from_titles:
        if len(chosen) == count:
            break
        if question not in chosen:
            chosen.append(question)
    return chosen
