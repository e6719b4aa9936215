"""Latency of answering, after loading: median and p95 of QAService.ask on the sample corpus.

    python bench/latency.py [--index DIR] [--repeat 3] [--folded]

Builds the index of data/reports into --index when it is missing (default: embeddings/).
Asks every question of shared/eval/dev_seeds.jsonl --repeat times (with --folded, typed
without diacritics, as the evaluation protocol folds them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from qabot.embedding import BundledEmbedder
from qabot.evaluation import protocol_fold
from qabot.index import build_index
from qabot.service import QAService

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "eval" / "dev_seeds.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    parser.add_argument("--repeat", type=int, default=3)
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
        questions = [protocol_fold(q) for q in questions]
    service.ask(questions[0])  # warm-up
    times = []
    for _ in range(args.repeat):
        for question in questions:
            t = time.perf_counter()
            service.ask(question)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
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


if __name__ == "__main__":
    sys.exit(main())
