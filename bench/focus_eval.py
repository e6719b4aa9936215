"""Held-out answer@1 of the answer-sentence model, before and after a change of its features.

    python bench/focus_eval.py [--generated FILE] [--uit DIR]
                               [--dev FILE] [--work DIR] [--refresh]

Every question is searched once (the committed ranker; the search is not what is measured)
and its SearchResult cached in --work. Sentence models are then fitted listwise, as
bench/fit_ranker.py fits them, on:
- UIT train (both files), folds grouped by context (fit_ranker's folds);
- the rule-generated questions (bench/generate_questions.py), folds = whole reports;
and scored by answer@1 through qabot.answer.extract_answer (the short answer a reader
gets, at most 400 characters), on each held-out part:
- "uit": UIT questions of the held-out fold, fitted on the other UIT folds (+ generated);
- "generated": one report's generated questions, fitted on UIT + the other reports' ones;
- "dev", "dev folded": dev_seeds.jsonl, each question scored by the model fitted without
  the generated questions of the report its gold passage is in, and by the model fitted on
  everything (what would ship).
"before" uses the feature set of main (SENTENCE_FEATURES without the new ones), "focus"
adds the focus feature, "after" has every feature. Prints one table; --json writes it too.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_ranker import DEFAULT_DATA, FILE_NAMES, fit_standardised, folds_of
from generate_questions import load_generated

from qabot import answer, evaluation
from qabot.embedding import BundledEmbedder
from qabot.fitted import LinearModel
from qabot.index import build_index
from qabot.service import QAService
from qabot.text import match_key, strip_marks

ROOT = Path(__file__).resolve().parents[1]
OLD_FEATURES = answer.SENTENCE_FEATURES[:9]  # main's sentence features
LAMBDA = 1e-2  # the committed sentence model's regularisation


@dataclass
class Question:
    part: str  # uit, generated, dev, dev folded
    group: str  # the hold-out unit: a UIT context or a report
    answers: tuple[str, ...]
    result: object  # SearchResult
    index: str  # which index it was searched in: "uit" or "reports"
    gold_doc: str | None  # the document an answer sentence must come from
    # Fitted on (generated questions with the report's period added are only scored; see
    # bench/fit_ranker.py generated_sentence_data).
    trainable: bool = True
    features: np.ndarray | None = None
    labels: np.ndarray | None = None


def search_all(service: QAService, questions: list[tuple[str, str]], top_k: int) -> list:
    searcher = service._require()
    results = []
    for text, _ in questions:
        step = service._standalone(text, [], searcher)
        results.append(searcher.search(step.asked, top_k, step.context))
    return results


def gold_doc_of(gold: tuple[str, ...], index) -> str | None:
    keys = [match_key(g) for g in gold if g]
    for passage in index.passages:
        if any(k in match_key(passage.text) for k in keys):
            return passage.doc_id
    return None


def label(q: Question, index, dense_scale: float) -> None:
    candidates = answer.sentence_candidates(q.result, index, dense_scale)
    keys = [match_key(a) for a in q.answers if a]
    q.features = (
        np.stack([c.features for c in candidates]).astype(np.float64)
        if candidates
        else np.zeros((0, len(answer.SENTENCE_FEATURES)))
    )
    q.labels = np.array(
        [
            (q.gold_doc is None or q.result.hits[c.rank].passage.doc_id == q.gold_doc)
            and any(
                k in match_key(q.result.hits[c.rank].passage.text[c.start : c.end]) for k in keys
            )
            for c in candidates
        ],
        dtype=bool,
    )


def fit(questions: list[Question], columns: list[int], lam: float = LAMBDA) -> LinearModel:
    groups = [
        (q.features[:, columns], q.labels) for q in questions if q.trainable and q.labels.any()
    ]
    weights = fit_standardised(groups, lam)
    full = np.zeros(len(answer.SENTENCE_FEATURES))
    full[columns] = weights
    return LinearModel(answer.SENTENCE_FEATURES, full.astype(np.float32), regularisation=lam)


def answer_at_1(q: Question, index, model: LinearModel, dense_scale: float) -> bool:
    if not q.result.found:
        return False
    short, _, _ = answer.extract_answer(q.result, index, model, dense_scale)
    if not short or len(short) > evaluation.MAX_SHORT_ANSWER:
        return False
    key = match_key(short)
    return any(match_key(a) and match_key(a) in key for a in q.answers)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generated", type=Path, default=Path("/tmp/qabot-fit/generated.jsonl"))
    parser.add_argument("--uit", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared/eval/dev_seeds.jsonl")
    parser.add_argument("--work", type=Path, default=Path("/tmp/focus-work"))
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--lambdas", default="0.01")
    args = parser.parse_args()
    embedder = BundledEmbedder()
    args.work.mkdir(parents=True, exist_ok=True)

    reports_dir = args.work / "reports"
    build_index(ROOT / "data" / "reports", reports_dir, embedder, wait_seconds=600)
    sets = [evaluation.load_set(args.uit / name) for name in FILE_NAMES]
    uit_dir = evaluation.context_index(sets, args.work / "uit-corpus", embedder)
    services = {"reports": QAService(reports_dir, embedder), "uit": QAService(uit_dir, embedder)}
    indexes = {k: s._require().index for k, s in services.items()}
    dense_scale = services["reports"]._require().models.dense_scale

    cache = args.work / "results.pkl"
    if args.refresh or not cache.exists():
        generated = load_generated(args.generated)
        dev = [i for i in evaluation.load_set(args.dev).items if i.gold]
        uit = [i for s in sets for i in s.items if i.gold]
        print(f"searching {len(uit)} UIT, {len(generated)} generated, {len(dev)} dev questions",
              file=sys.stderr)  # fmt: skip
        results = {
            "uit": search_all(services["uit"], [(i.question, "") for i in uit], 5),
            "generated": search_all(services["reports"], [(r["q"], "") for r in generated], 10),
            "dev": search_all(services["reports"], [(i.question, "") for i in dev], 10),
            "dev folded": search_all(
                services["reports"], [(strip_marks(i.question), "") for i in dev], 10
            ),
        }
        cache.write_bytes(pickle.dumps((uit, generated, dev, results)))
    uit, generated, dev, results = pickle.loads(cache.read_bytes())
    questions: list[Question] = []
    uit_folds = folds_of([(i.context_doc, None, None) for i in uit])
    for item, result, fold in zip(uit, results["uit"], uit_folds, strict=True):
        questions.append(
            Question("uit", f"uit{fold}", item.answers, result, "uit", item.context_doc)
        )
    for row, result in zip(generated, results["generated"], strict=True):
        questions.append(
            Question("generated", row["doc_id"], tuple(row["answer"]), result, "reports",
                     row["doc_id"], trainable=not row.get("time_added"))
        )  # fmt: skip
    for part in ("dev", "dev folded"):
        for item, result in zip(dev, results[part], strict=True):
            doc = gold_doc_of(item.gold, indexes["reports"])
            questions.append(Question(part, doc or "?", item.answers, result, "reports", None))
    for q in questions:
        label(q, indexes[q.index], dense_scale)

    n_old = len(OLD_FEATURES)
    feature_sets = {
        "before": list(range(n_old)),
        "focus": list(range(n_old + 1)),
        "after": list(range(len(answer.SENTENCE_FEATURES))),
    }
    uit_q = [q for q in questions if q.part == "uit"]
    gen_q = [q for q in questions if q.part == "generated"]
    reports = sorted({q.group for q in gen_q})
    table: dict[str, dict[str, float]] = {}

    def score(qs: list[Question], model: LinearModel) -> list[bool]:
        return [answer_at_1(q, indexes[q.index], model, dense_scale) for q in qs]

    for lam in [float(x) for x in args.lambdas.split(",")]:
        for name, columns in feature_sets.items():
            for with_generated in (False, True):
                if name != "after" and with_generated != (name == "focus"):
                    continue
                label_ = f"{name}{' +gen' if with_generated else ''} λ{lam:g}"
                row: dict[str, float] = {}
                # UIT held-out folds.
                hits = []
                for f in range(5):
                    train = [q for q in uit_q if q.group != f"uit{f}"]
                    if with_generated:
                        train += gen_q
                    model = fit(train, columns, lam)
                    hits += score([q for q in uit_q if q.group == f"uit{f}"], model)
                row["uit held-out"] = float(np.mean(hits))
                # Generated, whole reports held out; dev by the report of its gold passage.
                gen_hits, dev_hits = [], {"dev": [], "dev folded": []}
                for report in reports:
                    train = uit_q + (
                        [q for q in gen_q if q.group != report] if with_generated else []
                    )
                    model = fit(train, columns, lam)
                    gen_hits += score([q for q in gen_q if q.group == report], model)
                    for part in dev_hits:
                        dev_hits[part] += score(
                            [q for q in questions if q.part == part and q.group == report], model
                        )
                model = fit(uit_q + (gen_q if with_generated else []), columns, lam)
                for part in dev_hits:
                    dev_hits[part] += score(
                        [q for q in questions if q.part == part and q.group not in reports], model
                    )
                row["generated held-out"] = float(np.mean(gen_hits))
                for part, part_hits in dev_hits.items():
                    row[f"{part} held-out"] = float(np.mean(part_hits))
                for part in ("dev", "dev folded"):
                    row[f"{part} all"] = (
                        sum(score([q for q in questions if q.part == part], model)) / 29
                    )
                row["weights"] = [round(float(w), 3) for w in model.weights]
                table[label_] = row
                print(label_, json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(table, indent=1))
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    for service in services.values():
        service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
