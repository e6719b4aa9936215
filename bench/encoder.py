"""The two ways of computing a sentence-transformers model: numpy (qabot.encoder) against
sentence-transformers itself.

    python bench/encoder.py [--passages 96] [--questions 100] [--keep DIR]

Two models with random weights are built on the spot (nothing is downloaded): the tiny
64-dim BERT of bench/scale.py, and a BERT of multilingual-e5-small's shape (12 layers, 384
dims, 12 heads, 512 tokens). For each model and engine it prints one JSON line:

- start_seconds: a fresh Python process importing qabot's embedder, loading the model and
  embedding one question (what a command such as ``qabot index add`` pays before its work),
  as the process itself times it (Python's own start-up apart);
- start_rss_mb: that process's peak RSS;
- query_p50_ms: one question embedded, median over the questions;
- passages_per_second: generated report paragraphs embedded in batches of 32;
- max_difference: the largest difference between the two engines' vectors (numpy lines).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import CorpusGenerator, build_tiny_model

from qabot.embedding import ENGINES, SentenceTransformerEmbedder

# The child's peak RSS is read from /proc (VmHWM): its ru_maxrss would also count the
# memory of this process, which it was forked from before it ran Python.
START = """
import sys, time
started = time.perf_counter()
from qabot.embedding import SentenceTransformerEmbedder
embedder = SentenceTransformerEmbedder(sys.argv[1], engine=sys.argv[2])
embedder.embed_queries(["Đảng bộ có bao nhiêu đảng viên?"])
seconds = time.perf_counter() - started
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(seconds, status)
"""


def start(model: Path, engine: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a fresh process loading the model and embedding once."""
    done = subprocess.run(
        [sys.executable, "-c", START, str(model), engine],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, rss_kb = done.stdout.split()
    return float(seconds), float(rss_kb) / 1024


def measure(model: Path, passages: list[str], questions: list[str]) -> list[dict]:
    rows, vectors = [], {}
    for engine in [e for e in ENGINES if e != "auto"]:
        seconds, rss = start(model, engine)
        embedder = SentenceTransformerEmbedder(str(model), engine=engine)
        embedder.embed_passages(passages[:8])
        times = []
        for question in questions:
            started = time.perf_counter()
            embedder.embed_queries([question])
            times.append((time.perf_counter() - started) * 1000)
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            vectors[engine] = embedder.embed_passages(passages)
            best = min(best, time.perf_counter() - started)
        rows.append(
            {
                "model": model.name,
                "engine": engine,
                "start_seconds": round(seconds, 2),
                "start_rss_mb": round(rss),
                "query_p50_ms": round(statistics.median(times), 2),
                "passages_per_second": round(len(passages) / best, 1),
            }
        )
    difference = float(np.abs(vectors["numpy"] - vectors["sentence-transformers"]).max())
    rows[0]["max_difference"] = difference
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=96)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="build the models here and keep them")
    args = parser.parse_args()
    generator = CorpusGenerator(0)
    paragraphs: list[str] = []
    while len(paragraphs) < args.passages:
        _, text = generator.report(30)
        paragraphs += [p for p in text.split("\n") if len(p) > 80]
    passages = paragraphs[: args.passages]
    questions = generator.questions(args.questions)
    with tempfile.TemporaryDirectory(prefix="qabot-encoder-") as scratch:
        folder = args.keep or Path(scratch)
        models = [
            build_tiny_model(folder),
            build_tiny_model(
                folder, dim=384, layers=12, heads=12, name="e5-small-shape", max_seq_length=512
            ),
        ]
        for model in models:
            for row in measure(model, passages, questions):
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
