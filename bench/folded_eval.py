"""The evaluation protocol on accented and on folded (typed without diacritics) questions.

    python bench/folded_eval.py FILE... [--index DIR] [--top-k 10]

Like `qabot eval`: JSON-lines sets are asked against the index in --index (built from
data/reports when missing); SQuAD sets against an index of their contexts in <index>/eval.
Each set is asked twice, as written and folded by the protocol (NFD, marks removed, đ -> d),
and both metric tables are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from qabot import evaluation
from qabot.embedding import BundledEmbedder
from qabot.index import build_index
from qabot.service import QAService

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--only-folded", action="store_true")
    parser.add_argument("--sample", type=int, help="ask a random N items of each set (seeded)")
    args = parser.parse_args()
    embedder = BundledEmbedder()
    sets = [evaluation.load_set(f) for f in args.files]
    report: dict = {}
    plain = [s for s in sets if not s.contexts]
    squad = [s for s in sets if s.contexts]
    jobs = []
    if plain:
        build_index(ROOT / "data" / "reports", args.index, embedder, wait_seconds=600)
        jobs.append((QAService(args.index, embedder), plain))
    if squad:
        docs = evaluation.write_context_corpus(squad, args.index / "eval")
        build_index(docs, docs.parent / "index", embedder, wait_seconds=600)
        jobs.append((QAService(docs.parent / "index", embedder), squad))
    for service, group in jobs:
        for s in group:
            items = s.items
            if args.sample and args.sample < len(items):
                items = random.Random(0).sample(items, args.sample)
            kinds = {"folded": evaluation.fold_items(items)}
            if not args.only_folded:
                kinds = {"accented": items, **kinds}
            for kind, items in kinds.items():
                results = evaluation.run(items, lambda q, s=service: s.ask(q, args.top_k))
                report[f"{s.name} {kind}"] = evaluation.metrics(results)
                print(s.name, kind, json.dumps(report[f"{s.name} {kind}"]), file=sys.stderr)
        service.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
