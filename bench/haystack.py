"""Answer quality at scale: the sample reports planted among generated passages.

    python bench/haystack.py [--passages 100000] [--work DIR] [--max-postings 5000,2000]
                             [--questions ../shared/eval/dev_seeds.jsonl]

bench/scale.py measures what a large corpus costs; this measures what it does to the
answers. Its generated passages recombine the sample reports' own sentences, so they are
the hardest distractors there are: every word of a dev question is in thousands of them.
The sample reports are added under ``planted/``, the index is built (incrementally, when
--work already holds one) with bench/scale.py's tiny model, and the questions are asked,
as written and folded (no diacritics), once per MAX_POSTINGS value, each setting in a
fresh process so that no postings cached under another one are reused. The tiny model
has random weights: the dense side is noise and BM25 carries the answers, which is the
side a corpus's size changes. One JSON line per setting.

--work keeps the corpus, the model and the index; a second run reuses them. A
``bench/scale.py --keep DIR`` run's ``size-N`` folder (docs/, index/) can be given with
--model pointing at that run's model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.scale import REPORTS, ROOT, SRC, _env, build_tiny_model, run_build, write_corpus

from qabot import evaluation
from qabot.service import QAService

QUESTIONS = ROOT.parent / "shared" / "eval" / "dev_seeds.jsonl"

# Run in a fresh process per setting: MAX_POSTINGS is read at query time, and the postings
# a version of several segments remembers were cut under the setting they were read with.
ASK = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from bench.haystack import asked_metrics
from qabot.config import get_settings
from qabot.embedding import create_embedder
from qabot.index import bm25
from qabot.service import QAService

bm25.MAX_POSTINGS = int(sys.argv[1])
settings = get_settings()
embedder = create_embedder(
    settings.embedder, settings.embedding_model, False, settings.embedding_engine
)
service = QAService(Path(sys.argv[3]), embedder)
print(json.dumps(asked_metrics(service, Path(sys.argv[2]))))
service.close()
"""


def asked_metrics(service: QAService, questions: Path) -> dict[str, dict]:
    """The evaluation metrics of a question set, asked as written and folded."""
    items = evaluation.load_set(questions).items
    return {
        kind: evaluation.metrics(evaluation.run(asked, lambda q, h=None: service.ask(q, 10, h)))
        for kind, asked in (("accented", items), ("folded", evaluation.fold_items(items)))
    }


def plant(docs: Path, reports: Path = REPORTS) -> int:
    """Copies the sample reports into ``docs/planted``; returns how many."""
    target = docs / "planted"
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(reports.glob("*.txt"))
    for path in files:
        shutil.copyfile(path, target / path.name)
    return len(files)


def ask_all(env: dict[str, str], max_postings: int, questions: Path, index: Path) -> dict:
    """The evaluation metrics, accented and folded, with MAX_POSTINGS set to ``max_postings``."""
    done = subprocess.run(
        [sys.executable, "-c", ASK, str(max_postings), str(questions), str(index), str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"asking failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    passages: int,
    work: Path,
    model: Path | None,
    settings: list[int],
    questions: Path,
    seed: int = 0,
) -> list[dict]:
    docs, index = work / "docs", work / "index"
    if not docs.exists():
        write_corpus(docs, passages, seed)
    planted = plant(docs)
    model = model or (work / "model" / "tiny-scale-64")
    if not model.exists():
        model = build_tiny_model(work / "model")
    env = _env(model, docs, index, SRC)
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    _, _, summary = run_build(env, work / "build.log")
    rows = []
    for max_postings in settings:
        metrics = ask_all(env, max_postings, questions, index)
        row = {"passages": int(summary.get("passages", 0)), "planted_reports": planted}
        row["max_postings"] = max_postings
        for kind, m in metrics.items():
            for key in ("hit@1", "hit@5", "mrr@10", "answer@1", "found", "not_found"):
                row[f"{kind}_{key}"] = m[key]
            row[f"{kind}_latency_ms_median"] = m["latency_ms_median"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--work", type=Path, help="keep the corpus and index here")
    parser.add_argument("--model", type=Path, help="the tiny model folder of an earlier run")
    parser.add_argument("--max-postings", default="5000,2000")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.questions.exists():
        parser.error(f"no question set at {args.questions}")
    settings = [int(v) for v in args.max_postings.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="qabot-haystack-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for row in measure(args.passages, work, args.model, settings, args.questions, args.seed):
            print(json.dumps(row), flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
