"""Example questions to offer people (the bot's /start, the web page), derived from the
library: generic questions about the reports, kept only when the indexed documents can
answer them, then questions about the reports' own titles. No facts of a particular corpus
are written here. ``QAService.example_questions`` is how interfaces get them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

EXAMPLE_COUNT = 3
TITLE_WORDS = 10
# Candidates asked at most: each is a whole question (20 ms at a million passages), and a
# library of 15,000 reports whose title questions were all unanswerable would be asked
# 15,000 times on the first /start after every new version.
MAX_CHECKED = 12

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
    max_checked: int = MAX_CHECKED,
) -> list[str]:
    """Up to ``count`` questions: answerable generic ones first, then answerable questions
    about report titles (in the order given: the newest reports first), then unchecked
    title questions to make up the number. At most ``max_checked`` candidates are asked."""
    # Only the first titles can be asked or fill the list: a large library's are not read.
    first_titles = itertools.islice(titles, max_checked + count)
    from_titles = list(dict.fromkeys(title_question(t) for t in first_titles))
    candidates = list(dict.fromkeys([*generic, *from_titles]))
    chosen: list[str] = []
    for question in candidates[:max_checked]:
        if len(chosen) == count:
            return chosen
        if answerable(question):
            chosen.append(question)
    for question in from_titles:
        if len(chosen) == count:
            break
        if question not in chosen:
            chosen.append(question)
    return chosen
