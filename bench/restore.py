"""Accuracy and speed of diacritic restoration (qabot.restore).

    python bench/restore.py [--partial 0.5]

For the dev questions (shared/eval/dev_seeds.jsonl, restorer built from the passages of
data/reports) and the UIT train questions (restorer built from their contexts), every
question is folded by the protocol and restored; prints the share of syllables and of whole
questions restored exactly, how many accented questions the restorer would change (should be
none), the time per question, and the time with a synthetic vocabulary of 200k terms.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from pathlib import Path

from qabot.evaluation import load_set
from qabot.ingest import discover, load_document
from qabot.passages import split_document
from qabot.restore import Restorer, RestoreStats
from qabot.text import strip_marks

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
WORD = re.compile(r"[^\W\d_]+")


def report_texts() -> list[str]:
    docs = ROOT / "data" / "reports"
    texts = []
    for path in discover(docs):
        document = load_document(path, docs)
        texts.extend(p.indexed_text for p in split_document(document))
    return texts


def partly_folded(question: str, share: float, rng: random.Random) -> str:
    """The question with a random ``share`` of its words typed without marks."""
    return WORD.sub(
        lambda m: strip_marks(m.group()) if rng.random() < share else m.group(), question
    )


def score(restorer: Restorer, questions: list[str], partial: float) -> dict:
    syllables = correct = whole = changed = 0
    partial_syllables = partial_correct = 0
    times, cpu_times = [], []
    rng = random.Random(0)
    errors = []
    for question in questions:
        typed = strip_marks(question)
        if typed == question:  # typed without marks already: no gold to score against
            continue
        started, cpu_started = time.perf_counter(), time.thread_time()
        restored = restorer.restore(typed)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        gold_words, got_words = WORD.findall(question), WORD.findall(restored)
        syllables += len(gold_words)
        hits = sum(g == r for g, r in zip(gold_words, got_words, strict=False))
        correct += hits
        whole += restored == question
        if restored != question and len(errors) < 8:
            errors.append((question, restored))
        changed += restorer.restore(question) != question
        mixed = partly_folded(question, partial, rng)
        got = WORD.findall(restorer.restore(mixed))
        partial_syllables += len(gold_words)
        partial_correct += sum(g == r for g, r in zip(gold_words, got, strict=False))
    times.sort()
    cpu_times.sort()
    return {
        "questions": len(times),
        "syllable_accuracy": round(correct / max(syllables, 1), 4),
        "question_accuracy": round(whole / max(len(times), 1), 4),
        f"partly_folded_{partial}_syllable_accuracy": round(
            partial_correct / max(partial_syllables, 1), 4
        ),
        "accented_questions_changed": changed,
        "ms_median": round(statistics.median(times), 3),
        "ms_p95": round(times[int(0.95 * (len(times) - 1))], 3),
        # CPU time of the thread: what restoring costs, whatever else runs on the machine.
        "cpu_ms_median": round(statistics.median(cpu_times), 3),
        "cpu_ms_p95": round(cpu_times[int(0.95 * (len(cpu_times) - 1))], 3),
        "examples_of_errors": errors,
    }


def large_restorer(texts: list[str], terms: int) -> Restorer:
    """A restorer whose corpus has at least ``terms`` distinct syllables and bigrams: the
    given texts plus random pairs of their syllables."""
    stats = RestoreStats.from_texts(texts)
    rng = random.Random(1)
    words = [w for w in stats.syllables if w.isalpha()]
    extra, size = [], len(stats.syllables) + len(stats.bigram_keys)
    while size < 1.1 * terms:  # random pairs repeat now and then
        line = " ".join(rng.choice(words) for _ in range(50))
        extra.append(line)
        size += 49
    return Restorer.from_texts([*texts, *extra])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partial", type=float, default=0.5)
    parser.add_argument("--large", type=int, default=200_000)
    args = parser.parse_args()
    report = {}
    dev = [item.question for item in load_set(EVAL / "dev_seeds.jsonl").items]
    started = time.perf_counter()
    dev_restorer = Restorer.from_texts(report_texts())
    report["dev_build_seconds"] = round(time.perf_counter() - started, 2)
    report["dev_seeds"] = score(dev_restorer, dev, args.partial)
    uit_sets = [load_set(EVAL / "uit" / name) for name in ("train_reg.json", "train_wiki.json")]
    contexts = [text for s in uit_sets for _, _, text in s.contexts]
    uit_restorer = Restorer.from_texts(contexts)
    uit = [item.question for s in uit_sets for item in s.items]
    report["uit_train"] = score(uit_restorer, uit, args.partial)
    large = large_restorer(contexts, args.large)
    report[f"uit_train_{args.large}_terms"] = {
        "terms": len(large.stats.syllables) + len(large.stats.bigram_keys),
        **{k: v for k, v in score(large, uit, args.partial).items() if "ms" in k},
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
