"""One conversation step: the self-contained question a follow-up means.

A question is read as an attribute (what is asked: "bao nhiêu đảng viên", "chỉ tiêu") plus
slots (who or where: an organisation, a place, a person; when: a year or a period), with
follow-up cues ("còn", "thì sao") and references ("đó", "ông ấy", "đảng bộ này"). A follow-up
inherits the slots it does not name from the previous question and either replaces the
changed slot in that question or keeps its own attribute. A question that names its own
subject and carries no cue stands alone: a topic switch inherits nothing.

General Vietnamese grammar and administrative vocabulary only; no knowledge of any report.
Pure functions; the caller may pass ``known`` (is a syllable in the corpus vocabulary?) so a
follow-up about something the reports never mention ("Còn giá vàng hôm nay thì sao?") is
searched as typed and stays not found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qabot.query import QUESTION_PHRASES, with_context
from qabot.text import fold, has_diacritics, strip_marks

ORGANISATION, PLACE, PERSON, TIME = "organisation", "place", "person", "time"
SUBJECT_KINDS = (ORGANISATION, PLACE, PERSON)

# Why a question was (or was not) rewritten; exposed for logs and tests.
STANDALONE = "standalone"  # no history, or the question names its own subject
SLOT = "slot"  # the previous question with the changed slot replaced
ATTRIBUTE = "attribute"  # the follow-up's own attribute with the previous subject
REFERENCE = "reference"  # a reference resolved to the previous subject
IMPLICIT = "implicit"  # no subject of its own: the previous subject is meant
OFF_TOPIC = "off_topic"  # a follow-up about words the corpus never uses: asked as typed

# An implicit follow-up ("Ai làm trưởng đoàn?") is short; a longer question without cue or
# reference is its own question. Measured on dev_seeds asked after an unrelated question.
MAX_IMPLICIT_WORDS = 8
_TOKEN = re.compile(r"\d+(?:[./,:\-–]\d+)*|[^\W_]+")

# --- general Vietnamese vocabulary (folded forms) ------------------------------------------

_CUES_START = ("the con", "vay con", "con ve", "the thi", "vay thi", "con", "vay", "the")
_CUES_ANY = (
    "thi sao", "thi the nao", "thi ra sao", "the nao", "ra sao", "thi sao nhi", "thi",
    "nhi", "a", "nua",
)  # fmt: skip
# Nouns that a demonstrative turns into a reference ("hội nghị đó", "đảng bộ này").
_REFERENCE_NOUNS = (
    "hoi nghi", "buoi lam viec", "buoi", "cuoc hop", "dai hoi", "chuong trinh", "bao cao",
    "doan", "dang bo", "dang uy", "chi bo", "don vi", "to chuc", "co quan", "khoi", "khu",
    "ban", "hoi", "cong doan", "nghi quyet", "ke hoach", "dia phuong", "tinh", "thanh pho",
    "noi", "dong chi", "ong", "ba", "nguoi", "vi",
)  # fmt: skip
_TIME_REFERENCE_NOUNS = ("nam", "thoi diem", "luc", "khi", "giai doan", "nhiem ky", "thang", "ky")
_DEMONSTRATIVES = {"đó", "này", "ấy", "trên", "kia", "nọ"}
_FOLDED_DEMONSTRATIVES = {"do", "nay", "ay", "tren", "kia"}
# Pronouns that stand for a person or for the previous subject as a whole.
_PERSON_PRONOUNS = ("ong ay", "ba ay", "dong chi ay", "anh ay", "chi ay", "ong ta", "ba ta")
_GROUP_PRONOUNS = ("ho",)
_PLACE_REFERENCES = ("o do", "tai do", "o day", "noi do")
# Deictic time words: "hôm nay" is today, not a reference to the previous question.
_DEICTIC_TIME = ("hom nay", "tuan nay", "thang nay", "nam nay", "hien nay", "bay gio", "gan day")

# Organisation heads (administrative and mass organisations), grouped so "Còn Đoàn thanh
# niên?" replaces "Hội Cựu chiến binh" rather than the party committee.
_ORG_HEADS = {
    "dang uy": "party", "dang bo": "party", "chi bo": "party", "thanh uy": "party",
    "tinh uy": "party", "huyen uy": "party", "quan uy": "party", "ban thuong vu": "party",
    "ban chap hanh": "party", "uy ban kiem tra": "party",
    "ban quan ly": "board", "bql": "board", "ban to chuc": "board", "ban tuyen giao": "board",
    "ban dan van": "board", "van phong": "board", "uy ban nhan dan": "board", "ubnd": "board",
    "hoi dong nhan dan": "board",
    "cong doan": "mass", "doan thanh nien": "mass", "doan tncs": "mass", "hoi": "mass",
    "mat tran": "mass", "lien doan lao dong": "mass", "doan": "mass",
    "khu kinh te": "zone", "khu che xuat": "zone", "khu cong nghiep": "zone", "khu": "zone",
    "kcn": "zone", "kkt": "zone", "kcx": "zone", "khoi": "zone",
    "cong ty": "company", "tap doan": "company", "tong cong ty": "company",
}  # fmt: skip
# Words that end an organisation's name: verbs and function words of a question.
_NAME_STOPS = {
    "co", "la", "hien", "da", "duoc", "bi", "thi", "sao", "bao", "may", "ai", "gi", "nao",
    "dau", "khi", "tang", "giam", "ket", "giu", "phat", "chu", "lam", "dien", "den", "vao",
    "trong", "tai", "o", "voi", "ve", "cho", "cua", "nhiem", "giai", "tu", "sau", "truoc",
    "dat", "dam", "nhu", "hay", "thuc", "hoan", "nang", "gom", "neu", "de", "con", "vay",
    "the", "nam", "thang", "quy", "ngay", "tiep", "dong", "ung", "nhung", "moi", "tong",
    "so", "tham", "di", "tra", "khong", "chua", "hop", "phuong", "cung", "chi",
}  # fmt: skip
_NAME_STOP_PAIRS = {("to", "chuc"), ("thanh", "lap"), ("hoi", "nghi"), ("bao", "cao")}
# A one-word head followed by these is an ordinary word: "hội nghị", "khu vực", "đoàn thể".
_NOT_HEADS = {
    ("hoi", "nghi"), ("hoi", "truong"), ("hoi", "vien"), ("hoi", "thao"), ("khu", "vuc"),
    ("doan", "vien"), ("doan", "ket"), ("doan", "the"), ("khoi", "luong"), ("khoi", "dong"),
}  # fmt: skip
_BREAKS = set("(),;:?!.[]")
_SURNAMES = {
    "nguyen", "tran", "le", "pham", "hoang", "huynh", "phan", "vu", "vo", "dang", "bui", "do",
    "ho", "ngo", "duong", "ly", "mai", "dao", "chu", "truong", "dinh", "lam", "cao", "to",
    "luu", "trinh", "ta", "quach", "lai", "la", "kieu", "thai", "ton", "khuc", "luong",
}  # fmt: skip
_PERSON_TITLES = ("dong chi", "ong", "ba")
# Provinces and centrally governed cities (folded), and common short forms.
_PLACES = (
    "ha noi", "hai phong", "da nang", "can tho", "ho chi minh", "tphcm", "tp hcm", "sai gon",
    "thu duc", "an giang", "ba ria vung tau", "bac giang", "bac kan", "bac lieu", "bac ninh",
    "ben tre", "binh dinh", "binh duong", "binh phuoc", "binh thuan", "ca mau", "cao bang",
    "dak lak", "dak nong", "dien bien", "dong nai", "dong thap", "gia lai", "ha giang",
    "ha nam", "ha tinh", "hai duong", "hau giang", "hoa binh", "hung yen", "khanh hoa",
    "kien giang", "kon tum", "lai chau", "lam dong", "lang son", "lao cai", "long an",
    "nam dinh", "nghe an", "ninh binh", "ninh thuan", "phu tho", "phu yen", "quang binh",
    "quang nam", "quang ngai", "quang ninh", "quang tri", "soc trang", "son la", "tay ninh",
    "thai binh", "thai nguyen", "thanh hoa", "thua thien hue", "hue", "tien giang",
    "tra vinh", "tuyen quang", "vinh long", "vinh phuc", "yen bai", "vung tau",
)  # fmt: skip
_TIME_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(?:tu |den |trong )?\d+ thang (?:dau|cuoi) nam(?: \d{4})?",
        r"(?:tu |den |trong )?(?:nhiem ky|giai doan) \d{4} ?[-–] ?\d{4}",
        r"(?:tu |trong )?(?:nam )?\d{4} ?(?:[-–]|den) ?(?:nam )?\d{4}",
        r"(?:tu |den |trong |vao )?(?:ngay )?\d{1,2}/\d{1,2}/\d{4}",
        r"(?:tu |den |trong |vao )?thang \d{1,2}[/-]\d{4}",
        r"(?:tu |den |trong )?quy [1-4i]+(?:[/ ](?:nam )?\d{4})?",
        r"(?:tu |den |trong |vao )?nam \d{4}",
        r"(?:tu |den |trong )?\d+ thang(?: nam \d{4})?",
        r"(?:truoc|sau) khi (?:duoc )?\w+(?: cap)?",
        r"\b(?:19|20)\d{2}\b",
    )
)
_QUESTION_PHRASES = tuple(sorted({fold(p) for p in QUESTION_PHRASES}, key=len, reverse=True))
_FILLERS = {
    "thi", "co", "la", "cua", "o", "tai", "trong", "voi", "ve", "duoc", "da", "hien", "cac",
    "nhung", "va", "con", "vay", "the", "a", "nhi", "nua", "sao", "the nao", "ra",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    text: str
    folded: str
    start: int  # character offsets in the question
    end: int


@dataclass(frozen=True)
class Slot:
    kind: str
    first: int  # token range [first, last)
    last: int
    text: str
    group: str = ""  # organisation head group ("party", "mass", ...)
    named: bool = True  # False for a bare head ("Đảng ủy"), which refers back


@dataclass(frozen=True)
class Reference:
    kind: str  # "thing", "time", "person", "group", "place", "organisation"
    first: int
    last: int
    noun: str = ""  # the noun a demonstrative points with, as typed


@dataclass(frozen=True)
class Frame:
    """A question read as slots, references, cues and an attribute."""

    text: str
    tokens: tuple[Token, ...]
    slots: tuple[Slot, ...]
    references: tuple[Reference, ...]
    cue_spans: tuple[tuple[int, int], ...]
    question_spans: tuple[tuple[int, int], ...]
    attribute: tuple[int, ...]  # token indices of what is asked, beyond slots and fillers
    folded: bool

    def slots_of(self, *kinds: str) -> list[Slot]:
        return [s for s in self.slots if s.kind in kinds and s.named]

    @property
    def has_cue(self) -> bool:
        return bool(self.cue_spans)

    @property
    def own_subject(self) -> bool:
        return bool(self.slots_of(*SUBJECT_KINDS))


@dataclass(frozen=True)
class Step:
    question: str  # as typed
    standalone: str  # the self-contained question people read: asked words and context
    kind: str  # STANDALONE, SLOT, ATTRIBUTE, REFERENCE, IMPLICIT or OFF_TOPIC
    # What the follow-up itself asks (references resolved), and the subject, person or
    # period it inherits without naming them; searched with the context weighted lower, so
    # the inherited words cannot outweigh the short thing actually asked.
    asked: str = ""
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.asked:
            object.__setattr__(self, "asked", self.standalone)

    @property
    def rewritten(self) -> bool:
        return self.standalone != self.question


def _tokenise(text: str) -> tuple[Token, ...]:
    return tuple(
        Token(m.group(), fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)
    )


def _phrase_at(folded: list[str], i: int, phrase: str) -> int:
    """Length in tokens of ``phrase`` if it starts at token ``i``, else 0."""
    words = phrase.split()
    return len(words) if folded[i : i + len(words)] == words else 0


def _span_text(text: str, tokens: Sequence[Token], first: int, last: int) -> str:
    return text[tokens[first].start : tokens[last - 1].end]


def _time_slots(text: str, tokens: tuple[Token, ...], taken: set[int]) -> list[Slot]:
    """Years and periods, found on the folded text mapped back to tokens."""
    folded_text = fold(text)
    if len(folded_text) != len(text):  # not one character for one: match on tokens alone
        folded_text = " ".join(t.folded for t in tokens)
        offsets, position = [], 0
        for t in tokens:
            offsets.append(position)
            position += len(t.folded) + 1
    else:
        offsets = [t.start for t in tokens]
    slots = []
    for pattern in _TIME_PATTERNS:
        for match in pattern.finditer(folded_text):
            first = next((i for i, o in enumerate(offsets) if o >= match.start()), None)
            last = next((i for i, o in enumerate(offsets) if o >= match.end()), len(tokens))
            if first is None:
                continue
            while last > first and offsets[last - 1] >= match.end():
                last -= 1
            if first >= last or any(i in taken for i in range(first, last)):
                continue
            taken.update(range(first, last))
            slots.append(Slot(TIME, first, last, _span_text(text, tokens, first, last)))
    return slots


def _name_end(text: str, tokens: tuple[Token, ...], start: int, limit: int = 16) -> int:
    """Where a name that starts at ``start`` ends: at punctuation, or at a verb or function
    word unless the word is capitalised (a capital marks a proper name: "Ban Tổ chức")."""
    end = start
    while end < len(tokens) and end - start < limit:
        t = tokens[end]
        if end > 0 and _BREAKS & set(text[tokens[end - 1].end : t.start]):
            break
        if t.folded == "chi" and end + 1 < len(tokens) and tokens[end + 1].folded == "bo":
            end += 2
            continue
        pair = (t.folded, tokens[end + 1].folded) if end + 1 < len(tokens) else None
        capital = t.text[:1].isupper()
        if t.folded[:1].isdigit() and not capital:
            break
        if not capital and (t.folded in _NAME_STOPS or pair in _NAME_STOP_PAIRS):
            break
        end += 1
    return end


def analyse_turn(question: str) -> Frame:
    text = question.strip()
    tokens = _tokenise(text)
    folded = [t.folded for t in tokens]
    n = len(tokens)
    taken: set[int] = set()

    # Deictic time words first: "hôm nay", "hiện nay" are not references.
    deictic: set[int] = set()
    for i in range(n):
        for phrase in _DEICTIC_TIME:
            if length := _phrase_at(folded, i, phrase):
                deictic.update(range(i, i + length))

    references: list[Reference] = []
    accented = has_diacritics(text)
    for i in range(n):
        if i in taken or i in deictic:
            continue
        for phrase in _PERSON_PRONOUNS:
            if length := _phrase_at(folded, i, phrase):
                references.append(Reference("person", i, i + length))
                taken.update(range(i, i + length))
                break
        else:
            if folded[i] in _GROUP_PRONOUNS and (not accented or tokens[i].text.lower() == "họ"):
                references.append(Reference("group", i, i + 1))
                taken.add(i)
                continue
            for phrase in _PLACE_REFERENCES:
                if (length := _phrase_at(folded, i, phrase)) and (
                    not accented or tokens[i + length - 1].text.lower() in _DEMONSTRATIVES
                ):
                    references.append(Reference("place", i, i + length))
                    taken.update(range(i, i + length))
                    break
    # Noun + demonstrative: "hội nghị đó", "đảng bộ này", "năm đó".
    for i in range(n):
        t = tokens[i]
        demonstrative = (
            t.text.lower() in _DEMONSTRATIVES if accented else t.folded in _FOLDED_DEMONSTRATIVES
        )
        if not demonstrative or i in taken or i in deictic or i == 0:
            continue
        for nouns, kind in ((_TIME_REFERENCE_NOUNS, "time"), (_REFERENCE_NOUNS, "thing")):
            match = None
            for noun in sorted(nouns, key=len, reverse=True):
                length = len(noun.split())
                if i - length >= 0 and _phrase_at(folded, i - length, noun):
                    match = (i - length, noun)
                    break
            if match:
                first, noun = match
                if any(j in taken for j in range(first, i)):
                    continue
                if kind == "thing" and noun in _ORG_HEADS:
                    kind = "organisation"
                if kind == "thing" and noun in ("dong chi", "ong", "ba", "nguoi", "vi"):
                    kind = "person"
                references.append(Reference(kind, first, i + 1, _span_text(text, tokens, first, i)))
                taken.update(range(first, i + 1))
                break
        else:
            if accented and t.text.lower() in ("đó", "này", "ấy"):
                references.append(Reference("thing", i, i + 1))
                taken.add(i)

    slots = _time_slots(text, tokens, taken)

    # Organisations: a head and the name that follows it.
    i = 0
    while i < n:
        if i in taken:
            i += 1
            continue
        head = None
        for phrase in sorted(_ORG_HEADS, key=len, reverse=True):
            if length := _phrase_at(folded, i, phrase):
                head = (phrase, length)
                break
        # A lower-case one-word head ("hội", "khu", "sở") without a capitalised name is
        # ordinary language ("hội nghị", "khu vực").
        if head is None or (length == 1 and i + 1 < n and (folded[i], folded[i + 1]) in _NOT_HEADS):
            i += 1
            continue
        phrase, length = head
        end = max(_name_end(text, tokens, i + length), i + length)
        while any(j in taken for j in range(i, end)):
            end -= 1
        if end <= i:
            i += 1
            continue
        name_tokens = tokens[i + length : end]
        named = bool(name_tokens) or (tokens[i].text[:1].isupper() and length > 1)
        if (
            length == 1
            and not tokens[i].text[:1].isupper()
            and not (name_tokens and name_tokens[0].text[:1].isupper())
        ):
            i += 1
            continue
        if phrase in ("dang uy", "dang bo", "chi bo") and not name_tokens:
            named = False
        slots.append(
            Slot(
                ORGANISATION,
                i,
                end,
                _span_text(text, tokens, i, end),
                group=_ORG_HEADS[phrase],
                named=named,
            )
        )
        taken.update(range(i, end))
        i = end

    # Places: provinces and cities by name, and "ở/tại" + a capitalised name.
    for i in range(n):
        if i in taken:
            continue
        for phrase in sorted(_PLACES, key=len, reverse=True):
            if (length := _phrase_at(folded, i, phrase)) and not any(
                j in taken for j in range(i, i + length)
            ):
                slots.append(Slot(PLACE, i, i + length, _span_text(text, tokens, i, i + length)))
                taken.update(range(i, i + length))
                break
    for i in range(n - 1):
        if folded[i] in ("o", "tai") and i + 1 not in taken and tokens[i + 1].text[:1].isupper():
            end = i + 1
            while end < n and end not in taken and tokens[end].text[:1].isupper() and end < i + 5:
                end += 1
            slots.append(Slot(PLACE, i + 1, end, _span_text(text, tokens, i + 1, end)))
            taken.update(range(i + 1, end))

    # People: "đồng chí X", or a capitalised run that starts with a common surname.
    for i in range(n):
        if i in taken:
            continue
        title = next((p for p in _PERSON_TITLES if _phrase_at(folded, i, p)), None)
        start = i + len(title.split()) if title else i
        if start >= n or start in taken:
            continue
        capitalised = tokens[start].text[:1].isupper()
        if not title and not (capitalised and folded[start] in _SURNAMES):
            continue
        if title in ("ba", "ong") and not capitalised:
            continue
        end = start
        while (
            end < n
            and end not in taken
            and end - start < 4
            and (tokens[end].text[:1].isupper() if capitalised else folded[end] not in _NAME_STOPS)
            and not tokens[end].folded[:1].isdigit()
        ):
            end += 1
        if end - start < (1 if title else 2):
            continue
        slots.append(Slot(PERSON, start, end, _span_text(text, tokens, start, end)))
        taken.update(range(i, end))

    # Follow-up cues.
    cue_spans: list[tuple[int, int]] = []
    for phrase in _CUES_START:
        if n and (length := _phrase_at(folded, 0, phrase)):
            if phrase == "con" and accented and tokens[0].text.lower() != "còn":
                continue
            if (
                phrase in ("vay", "the")
                and accented
                and tokens[0].text.lower()
                not in (
                    "vậy",
                    "thế",
                )
            ):
                continue
            cue_spans.append((0, length))
            break
    for i in range(n):
        if i in taken or any(a <= i < b for a, b in cue_spans):
            continue
        for phrase in ("thi sao", "thi the nao", "thi ra sao", "thi"):
            if length := _phrase_at(folded, i, phrase):
                if accented and tokens[i].text.lower() != "thì":
                    continue
                if i + length < n and folded[i + length] == "dua":  # "thi đua"
                    continue
                cue_spans.append((i, i + length))
                break

    question_spans: list[tuple[int, int]] = []
    for i in range(n):
        if any(a <= i < b for a, b in question_spans) or i in taken:
            continue
        for phrase in _QUESTION_PHRASES:
            if len(phrase.split()) == 1 and accented:
                # One-syllable question words only with their accents ("gì", "ai", "nào").
                original = [p for p in QUESTION_PHRASES if fold(p) == phrase]
                if tokens[i].text.lower() not in original:
                    continue
            if length := _phrase_at(folded, i, phrase):
                if not accented and length == 1 and phrase not in ("gi", "ai", "nao"):
                    continue
                question_spans.append((i, i + length))
                break

    covered = set(taken) | deictic
    for a, b in (*cue_spans, *question_spans):
        covered.update(range(a, b))
    attribute = tuple(i for i in range(n) if i not in covered and folded[i] not in _FILLERS)
    return Frame(
        text=text,
        tokens=tokens,
        slots=tuple(sorted(slots, key=lambda s: s.first)),
        references=tuple(references),
        cue_spans=tuple(cue_spans),
        question_spans=tuple(question_spans),
        attribute=attribute,
        folded=not has_diacritics(text),
    )


# --- forming the self-contained question ---------------------------------------------------


def _ends(text: str) -> str:
    return text.strip().rstrip("?.!…").strip(" ,;:-–")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _replace_spans(frame: Frame, replacements: dict[tuple[int, int], str]) -> str:
    """The question's text with token spans replaced (an empty string drops the span)."""
    text, out, position = frame.text, [], 0
    for (first, last), new in sorted(replacements.items()):
        start, end = frame.tokens[first].start, frame.tokens[last - 1].end
        if start < position:
            continue
        out.append(text[position:start])
        out.append(new)
        position = end
    out.append(text[position:])
    return " ".join("".join(out).split())


def _content_text(frame: Frame) -> str:
    """The question without its interrogatives and cues: what it is about."""
    drop = {span: "" for span in (*frame.question_spans, *frame.cue_spans)}
    return _ends(_replace_spans(frame, drop))


def _question_words(frame: Frame) -> str:
    return " ".join(_span_text(frame.text, frame.tokens, a, b) for a, b in frame.question_spans)


def _subject_slots(frame: Frame) -> list[Slot]:
    return frame.slots_of(ORGANISATION, PLACE)


def _inline(slot: Slot) -> str:
    """A slot's text inside a sentence: a period starts lower case ("Năm 2024" -> "năm
    2024"); names keep their capitals."""
    if slot.kind == TIME:
        return slot.text[:1].lower() + slot.text[1:]
    return slot.text


def _replace_slots(previous: Frame, current: Frame) -> str:
    """The previous question with the slots the follow-up names put in place of its own."""
    replacements: dict[tuple[int, int], str] = {}
    appended: list[str] = []
    for slot in current.slots_of(ORGANISATION, PLACE, PERSON, TIME):
        if slot.kind == TIME:
            targets = previous.slots_of(TIME)[:1]
        elif slot.kind == PERSON:
            targets = previous.slots_of(PERSON)[:1]
        else:
            subject = _subject_slots(previous)
            same_group = [s for s in subject if slot.kind == ORGANISATION and s.group == slot.group]
            # A new place or organisation replaces the previous subject as a whole.
            targets = same_group[:1] if same_group and slot.group == "mass" else subject
        targets = [t for t in targets if (t.first, t.last) not in replacements]
        if targets:
            replacements[(targets[0].first, targets[0].last)] = _inline(slot)
            for extra in targets[1:]:
                replacements[(extra.first, extra.last)] = ""
        else:
            appended.append(_inline(slot))
    text = _ends(_replace_spans(previous, replacements))
    if appended:
        text = f"{text} {' '.join(appended)}"
    return _capitalise(text) + "?"


def _with_previous(previous: Frame, current: Frame) -> tuple[str, tuple[str, ...]]:
    """The follow-up's own words with references resolved, and the previous subject,
    person or period it inherits without naming them (the context)."""
    subject = _subject_slots(previous)
    subject_text = " ".join(s.text for s in subject)
    person = previous.slots_of(PERSON)
    times = previous.slots_of(TIME)
    replacements: dict[tuple[int, int], str] = {span: "" for span in current.cue_spans}
    inherit_subject = not current.own_subject
    inherit_time = not current.slots_of(TIME)
    context: list[str] = []
    for ref in current.references:
        span = (ref.first, ref.last)
        if ref.kind == "time":
            if times:
                replacements[span] = _inline(times[0])
                inherit_time = False
            else:
                replacements[span] = ref.noun
        elif ref.kind == "person":
            if person:
                replacements[span] = person[0].text
            else:
                replacements[span] = ref.noun
                # The person was the previous answer: what the previous question said of them.
                context.append(_content_text(previous))
                inherit_subject = False
        elif ref.kind == "organisation" and subject:
            replacements[span] = subject_text
            inherit_subject = False
        elif ref.kind == "place" and subject:
            replacements[span] = f"ở {subject_text}"
            inherit_subject = False
        elif ref.kind == "group" and subject:
            replacements[span] = subject_text
            inherit_subject = False
        elif ref.kind == "thing" and subject and ref.noun:
            replacements[span] = f"{ref.noun} của {subject_text}"
            inherit_subject = False
        else:
            replacements[span] = ref.noun
            inherit_subject = True
    # A bare "Đảng ủy" points back to the previous subject.
    if any(s.kind == ORGANISATION and not s.named for s in current.slots) and subject:
        inherit_subject = True
    core = _ends(_replace_spans(current, replacements))
    if not current.question_spans:
        asked = _question_words(previous)
        if asked:
            core = f"{core} {asked}"
    if inherit_subject and subject:
        context.append(subject_text)
    if inherit_subject and not subject and person and not current.slots_of(PERSON):
        context.append(person[0].text)
    if inherit_time and times:
        context.append(_inline(times[0]))
    context = [c for c in dict.fromkeys(context) if c and fold(c) not in fold(core)]
    return _capitalise(core) + "?", tuple(context)


def _unknown_words(frame: Frame, known: Callable[[str], bool] | None) -> bool:
    """True when what the follow-up asks about uses words the corpus never uses."""
    if known is None:
        return False
    words = [frame.tokens[i] for i in frame.attribute if not frame.tokens[i].folded.isdigit()]
    return any(not known(t.text.lower()) for t in words)


def resolve(
    question: str,
    previous: str | None,
    known: Callable[[str], bool] | None = None,
) -> Step:
    """One step: ``question`` read against the previous self-contained question."""
    current = analyse_turn(question)
    if not previous or not current.tokens:
        return Step(question, question, STANDALONE)
    before = analyse_turn(previous)
    follows = current.has_cue or bool(current.references)
    if not follows and current.own_subject:
        return Step(question, question, STANDALONE)  # a new topic: nothing is inherited
    context: tuple[str, ...] = ()
    if not current.attribute and (current.has_cue or current.slots):
        asked, kind = _replace_slots(before, current), SLOT
    else:
        if _unknown_words(current, known):
            return Step(question, question, OFF_TOPIC)
        kind = REFERENCE if current.references else ATTRIBUTE if follows else IMPLICIT
        if kind == IMPLICIT and (
            not before.slots_of(*SUBJECT_KINDS, TIME)
            or current.slots_of(TIME)
            or len(current.attribute) > MAX_IMPLICIT_WORDS
        ):
            # Without a cue or a reference, a question that dates itself or says much is
            # read as complete: it is asked as typed.
            return Step(question, question, STANDALONE)
        asked, context = _with_previous(before, current)
    if current.folded != before.folded:
        # One script for the whole question: typed without accents, searched without them.
        asked, context = strip_marks(asked), tuple(strip_marks(c) for c in context)
    return Step(question, with_context(asked, context), kind, asked, context)


def resolve_conversation(
    question: str,
    history: Sequence[str],
    known: Callable[[str], bool] | None = None,
) -> Step:
    """The last step of a conversation: each earlier question is resolved against the one
    before it (oldest first), then ``question`` against the last resolved one. A turn about
    something the reports never mention is skipped as context."""
    previous: str | None = None
    for earlier in history:
        step = resolve(earlier, previous, known)
        if step.kind != OFF_TOPIC:
            previous = step.standalone
    return resolve(question, previous, known)
