"""Latency of answering, after loading: median and p95 of QAService.ask on the sample corpus.

    python bench/latency.py [--index DIR] [--repeat 3] [--log] [--folded]

Builds the index of data/reports into --index when it is missing (default: embeddings/).
Asks every question of shared/eval/dev_seeds.jsonl --repeat times (with --folded, typed
without diacritics, as the evaluation protocol folds them).

--log also compares the question log on and off: two services over the same index, one
writing a question log in a temporary folder, asked the same questions in alternation (so
the machine's load falls on both alike); prints both medians and their difference, and the
time of the logging step alone (what the log adds to each answer).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qabot.embedding import BundledEmbedder
from qabot.index import build_index
from qabot.questionlog import QuestionLog
from qabot.service import QAService
from qabot.text import strip_marks

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "eval" / "dev_seeds.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--log", action="store_true", help="compare the question log on / off")
    parser.add_argument("--folded", action="store_true")
    args = parser.parse_args()
    embedder = BundledEmbedder()
    started = time.perf_counter()
    build_index(ROOT / "data" / "reports", args.index, embedder)
    service = QAService(args.index, embedder)
    load_seconds = time.perf_counter() - started
    questions = [
        json.loads(line)["q"] for line in SEEDS.read_text(encoding="utf-8").splitlines() if line
    ]
    if args.folded:
        questions = [strip_marks(q) for q in questions]
    service.ask(questions[0])  # warm-up
    times = []
    for _ in range(args.repeat):
        for question in questions:
            t = time.perf_counter()
            service.ask(question)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    if args.log:
        print(json.dumps(compare_log(service, questions, args.repeat)))
    print(
        json.dumps(
            {
                "questions": len(times),
                "load_seconds": round(load_seconds, 2),
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                "max_ms": round(times[-1], 1),
            }
        )
    )
    return 0


def compare_log(service: QAService, questions: list[str], repeat: int) -> dict:
    """Median ask time with the question log off and on, asked in alternation."""
    with tempfile.TemporaryDirectory() as folder:
        question_log = QuestionLog(Path(folder) / "questions.sqlite")
        logged = QAService(service.index_dir, service.embedder, question_log=question_log)
        logged.ask(questions[0])  # warm-up
        off: list[float] = []
        on: list[float] = []
        for round_ in range(repeat):
            for number, question in enumerate(questions):
                pair = [(service, off), (logged, on)]
                if (round_ + number) % 2:
                    pair.reverse()
                for qa, times in pair:
                    t = time.perf_counter()
                    qa.ask(question)
                    times.append((time.perf_counter() - t) * 1000)
        # The only work the log adds to an answer: under load the medians above move by
        # more than this, so the step is timed on its own too.
        searcher = logged._require()
        step: list[float] = []
        for question in questions:
            answer = service.ask(question)
            result = searcher.search(question, 5)
            for _ in range(20):
                t = time.perf_counter()
                logged._logged(answer, result, "api", None)
                step.append((time.perf_counter() - t) * 1000)
        logged.close()
        written = question_log.written
    off_median, on_median = statistics.median(off), statistics.median(on)
    return {
        "questions": len(on),
        "log_written": written,
        "median_ms_log_off": round(off_median, 2),
        "median_ms_log_on": round(on_median, 2),
        "median_difference_ms": round(on_median - off_median, 2),
        "log_step_median_ms": round(statistics.median(step), 4),
        "log_step_max_ms": round(max(step), 3),
    }


if __name__ == "__main__":
    sys.exit(main())
