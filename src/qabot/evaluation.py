"""The scoring protocol of the evaluation sets (shared/eval/README.md).

Two kinds of set: JSON lines with gold strings, asked against an index of the reports; and
SQuAD files, whose contexts are the corpus (one document per context).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from qabot.answer import Answer
from qabot.embedding import Embedder
from qabot.index import build_index
from qabot.index.layout import CACHE
from qabot.passages import PassageConfig
from qabot.text import match_key, strip_marks

MAX_SHORT_ANSWER = 400
CUTOFFS = (1, 3, 5)


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    gold: tuple[str, ...]  # strings that mark an answering passage; empty: unanswerable
    answers: tuple[str, ...]
    context_doc: str | None = None  # SQuAD: the document made from the question's context
    # Conversation sets: the earlier questions of the item's conversation, oldest first.
    history: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    name: str
    items: list[EvalItem]
    contexts: list[tuple[str, str, str]]  # (doc file name, title, text); SQuAD only


def is_squad(path: Path) -> bool:
    if path.suffix == ".jsonl":
        return False
    with open(path, encoding="utf-8") as handle:
        head = handle.read(2048).lstrip()
    return head.startswith("{") and '"data"' in head


def conversation_items(record: dict, number: int) -> list[EvalItem]:
    """The scored turns of one conversation: every turn after the first, each asked with the
    questions before it as history."""
    turns = record["turns"]
    conversation = str(record.get("id", number))
    return [
        EvalItem(
            id=f"{conversation}.{k + 1}",
            question=turn["q"],
            gold=tuple(turn.get("gold", [])),
            answers=tuple(turn.get("answer", [])),
            history=tuple(t["q"] for t in turns[:k]),
        )
        for k, turn in enumerate(turns)
        if k > 0
    ]


def load_jsonl(path: Path) -> EvalSet:
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "turns" in record:
                items.extend(conversation_items(record, number))
                continue
            items.append(
                EvalItem(
                    id=str(record.get("id", number)),
                    question=record["q"],
                    gold=tuple(record.get("gold", [])),
                    answers=tuple(record.get("answer", [])),
                )
            )
    return EvalSet(path.name, items, [])


def load_squad(path: Path) -> EvalSet:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    items, contexts = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            doc = f"{path.stem}-{len(contexts):04d}.txt"
            contexts.append((doc, article.get("title") or path.stem, paragraph["context"]))
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa.get("answers", []))
                impossible = qa.get("is_impossible", False) or not answers
                items.append(
                    EvalItem(
                        id=str(qa.get("id", len(items))),
                        question=qa["question"],
                        gold=() if impossible else answers,
                        answers=() if impossible else answers,
                        context_doc=None if impossible else doc,
                    )
                )
    return EvalSet(path.name, items, contexts)


def fold_items(items: list[EvalItem]) -> list[EvalItem]:
    """The same items with their questions typed without diacritics."""
    return [replace(item, question=strip_marks(item.question)) for item in items]


def load_set(path: Path) -> EvalSet:
    return load_squad(path) if is_squad(path) else load_jsonl(path)


def write_context_corpus(sets: list[EvalSet], folder: Path) -> Path:
    """SQuAD contexts as .txt documents (title in front matter) in a folder keyed by content."""
    contexts = [c for s in sets for c in s.contexts]
    digest = hashlib.sha256(json.dumps(contexts, ensure_ascii=False).encode()).hexdigest()[:16]
    docs = folder / digest / "docs"
    if not docs.is_dir():
        staging = folder / digest / ".docs.tmp"
        staging.mkdir(parents=True, exist_ok=True)
        for name, title, text in contexts:
            safe_title = " ".join(title.split()).replace('"', "'")
            (staging / name).write_text(
                f'---\ntitle: "{safe_title}"\n---\n{text}\n', encoding="utf-8"
            )
        staging.rename(docs)
    return docs


def context_index(
    sets: list[EvalSet],
    folder: Path,
    embedder: Embedder,
    config: PassageConfig | None = None,
    cache_from: Path | None = None,
) -> Path:
    """An index of the SQuAD sets' contexts under ``folder`` (built or brought up to date),
    keyed by the contexts' content. ``cache_from`` seeds its embedding cache."""
    docs = write_context_corpus(sets, folder)
    index_dir = docs.parent / "index"
    cache = index_dir / CACHE
    if cache_from is not None and cache_from.is_file() and not cache.exists():
        index_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache_from, cache)
    build_index(docs, index_dir, embedder, config, wait_seconds=600)
    return index_dir


def _passage_hits(item: EvalItem, answer: Answer) -> list[bool]:
    gold = [match_key(g) for g in item.gold]
    hits = []
    for passage in answer.passages:
        key = match_key(passage.text)
        in_context = item.context_doc is None or passage.doc_id == item.context_doc
        hits.append(in_context and any(g and g in key for g in gold))
    return hits


@dataclass
class ItemResult:
    item: EvalItem
    answer: Answer
    seconds: float

    @property
    def answerable(self) -> bool:
        return bool(self.item.gold)

    @property
    def first_hit(self) -> int | None:
        hits = _passage_hits(self.item, self.answer)
        return next((i + 1 for i, hit in enumerate(hits) if hit), None)

    @property
    def answer_correct(self) -> bool:
        short = self.answer.answer
        if not short or len(short) > MAX_SHORT_ANSWER:
            return False
        key = match_key(short)
        return any(match_key(a) and match_key(a) in key for a in self.item.answers)


def run(items: list[EvalItem], ask: Callable[..., Answer]) -> list[ItemResult]:
    """Ask every item; an item of a conversation set is asked as ``ask(question, history)``."""
    results = []
    for item in items:
        started = time.perf_counter()
        answer = ask(item.question, list(item.history)) if item.history else ask(item.question)
        results.append(ItemResult(item, answer, time.perf_counter() - started))
    return results


def metrics(results: list[ItemResult]) -> dict:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    ranks = [r.first_hit for r in answerable]
    n = max(len(answerable), 1)
    report: dict = {"questions": len(results), "answerable": len(answerable)}
    for k in CUTOFFS:
        report[f"hit@{k}"] = round(sum(1 for x in ranks if x is not None and x <= k) / n, 4)
    report["mrr@10"] = round(sum(1 / x for x in ranks if x is not None and x <= 10) / n, 4)
    report["answer@1"] = round(sum(r.answer_correct for r in answerable) / n, 4)
    report["found"] = round(sum(r.answer.found for r in answerable) / n, 4)
    report["unanswerable"] = len(unanswerable)
    report["not_found"] = (
        round(sum(not r.answer.found for r in unanswerable) / len(unanswerable), 4)
        if unanswerable
        else None
    )
    times = sorted(r.seconds * 1000 for r in results)
    report["latency_ms_median"] = round(statistics.median(times), 1) if times else None
    report["latency_ms_p95"] = (
        round(times[min(len(times) - 1, int(0.95 * len(times)))], 1) if times else None
    )
    return report


Ask = Callable[[str], Answer]


def evaluate(
    paths: list[Path], index_dir: Path, open_service: Callable[[Path], Ask], embedder: Embedder
) -> dict[str, dict]:
    """Metrics per evaluation file. Question sets are asked against the index in
    ``index_dir``; SQuAD sets against an index of their contexts, built in
    ``index_dir/eval``. ``open_service(index_dir)`` gives the function that asks."""
    sets = [load_set(Path(p)) for p in paths]
    report: dict[str, dict] = {}
    plain = [s for s in sets if not s.contexts]
    squad = [s for s in sets if s.contexts]
    if plain:
        ask = open_service(index_dir)
        for s in plain:
            report[s.name] = metrics(run(s.items, ask))
    if squad:
        ask = open_service(context_index(squad, index_dir / "eval", embedder))
        for s in squad:
            report[s.name] = metrics(run(s.items, ask))
    return report
