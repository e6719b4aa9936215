"""Follow-up turns of conversation sets, searched alone and through the conversation step.

    PYTHONPATH=src python bench/conversations.py --index embeddings data/eval/conversations*.jsonl

Prints the protocol's metrics for both and, with --misses, each follow-up that the step
does not answer at rank 1 (its interpreted question and the first passage).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qabot import evaluation
from qabot.embedding import BundledEmbedder
from qabot.service import QAService


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--index", default="embeddings")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args()
    service = QAService(Path(args.index), BundledEmbedder())
    report = {}
    for name in args.files:
        items = evaluation.load_set(Path(name)).items
        alone = evaluation.run(items, lambda q, h=None: service.ask(q, args.top_k))
        step = evaluation.run(items, lambda q, h=None: service.ask(q, args.top_k, h))
        report[Path(name).name] = {
            "alone": evaluation.metrics(alone),
            "with_step": evaluation.metrics(step),
        }
        if args.misses:
            for r in step:
                ok = r.first_hit == 1 and r.answer_correct if r.answerable else not r.answer.found
                if not ok:
                    top = r.answer.passages[0].text[:120] if r.answer.passages else "-"
                    print(
                        f"{r.item.id} hit={r.first_hit} ans={r.answer_correct} "
                        f"found={r.answer.found} | {r.answer.interpreted_question}\n   "
                        f"answer: {r.answer.answer[:150]!r}\n   top: {top!r}"
                    )
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
