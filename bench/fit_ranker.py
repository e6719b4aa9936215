"""Fit the ranker, the confidence model and the answer-sentence model on the UIT train files.

    pip install -e '.[bench]'
    python bench/fit_ranker.py [--data DIR] [--work DIR] [--write] [--check] [--refresh]
                               [--generated FILE [--reports DIR]]

--data is the folder with train_reg.json and train_wiki.json (default: ../shared/eval/uit
beside the repository). Only those train files are used, and, with --generated, the
rule-generated questions of bench/generate_questions.py for the answer-sentence model
(asked against an index of --reports, default data/reports; whole reports form its folds).
Folds group questions by their context, so no context is in both the fitting and the
scoring part of a fold.

Prints held-out scores per regularisation strength and the found/not-found curve; with
--write, writes the model file of the bundled embedder (src/qabot/models/<embedder>.json:
features, weights, thresholds, the data's checksums, regularisation, held-out scores, date).
--check fits and compares with the committed file instead (exit 1 on a difference larger
than --tolerance). Nothing in src/ is edited by hand, and no module global is changed: the
fitted weights reach qabot only through the Searcher's constructor and the model file.

Negatives for the confidence model are questions asked against a corpus of the other domain
(regulation questions against Wikipedia contexts and the reverse): that corpus cannot answer
them. Candidate features are cached in --work, keyed by everything they depend on (data
checksums, passage settings, pipeline, feature names, embedder), so a rerun after a change
to any of them recomputes them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from qabot import answer, evaluation, fitted, search
from qabot.embedding import BundledEmbedder
from qabot.fitted import ConfidenceModel, FittedModels, LinearModel
from qabot.index import build_index, open_index
from qabot.index.build import pipeline_fingerprint
from qabot.passages import PassageConfig
from qabot.text import match_key

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "uit"
FILE_NAMES = ("train_reg.json", "train_wiki.json")
FOLDS = 5
RANKER_LAMBDAS = (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
SENTENCE_LAMBDAS = (0.0, 1e-3, 1e-2, 1e-1)
CONFIDENCE_LAMBDA = 1e-4
# found = confidence >= threshold: the largest threshold on this grid that keeps at least
# FOUND_RATE of the answerable training questions found.
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
FOUND_RATE = 0.99


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- fitting ---------------------------------------------------------------------------------


def listwise_loss(w, groups, lam):
    loss, grad = 0.0, np.zeros_like(w)
    for x, y in groups:
        s = x @ w
        s = s - s.max()
        p = np.exp(s) / np.exp(s).sum()
        pos = p[y].sum()
        loss -= np.log(pos + 1e-12)
        # d/dw -log(sum_pos p) = E_p[x] - E_{p|pos}[x]
        grad += p @ x - (p[y] / (pos + 1e-12)) @ x[y]
    loss /= len(groups)
    grad /= len(groups)
    return loss + lam * (w @ w), grad + 2 * lam * w


def fit_listwise(groups, lam):
    w0 = np.zeros(groups[0][0].shape[1])
    return minimize(listwise_loss, w0, args=(groups, lam), jac=True, method="L-BFGS-B").x


def hit_at_1(w, data):
    hits = [y[np.argmax(x @ w)] for _, x, y in data if len(y)]
    return float(np.mean(hits)) if hits else 0.0


def folds_of(data, k=FOLDS):
    contexts = sorted({c for c, _, _ in data})
    order = np.random.default_rng(7).permutation(len(contexts))
    fold_of = {contexts[j]: i % k for i, j in enumerate(order)}
    return [fold_of[c] for c, _, _ in data]


def choose_lambda(data, lambdas, label):
    """The regularisation with the best mean held-out hit@1, and every lambda's score."""
    folds = folds_of(data)
    scores = {}
    for lam in lambdas:
        per_fold = []
        for f in range(FOLDS):
            train = [(x, y) for (_, x, y), g in zip(data, folds, strict=True) if g != f and y.any()]
            test = [d for d, g in zip(data, folds, strict=True) if g == f]
            per_fold.append(hit_at_1(fit_listwise(train, lam), test) * len(test))
        scores[lam] = sum(per_fold) / len(data)
        print(f"{label} lambda {lam:g}: held-out hit@1 {scores[lam]:.4f}", file=sys.stderr)
    best = max(lambdas, key=lambda lam: (scores[lam], -lam))
    return best, scores


def fit_logistic(X, y, lam):
    def loss(params):
        w, b = params[:-1], params[-1]
        p = 1 / (1 + np.exp(-(X @ w + b)))
        nll = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        g = X.T @ (p - y) / len(y)
        return nll + lam * (w @ w), np.append(g + 2 * lam * w, np.mean(p - y))

    result = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B")
    return result.x[:-1], result.x[-1]


# --- features --------------------------------------------------------------------------------


def ranker_data(searcher, items):
    """Per question: its context, candidate features, labels, and absolute signals."""
    out = []
    for item in items:
        c = searcher.candidates(item.question)
        answers = [match_key(a) for a in item.answers]
        labels = np.array(
            [
                p.doc_id == item.context_doc and any(a and a in match_key(p.text) for a in answers)
                for p in c.passages
            ],
            dtype=bool,
        )
        out.append((item.context_doc, c.features.astype(np.float64), labels, c.signals))
    return out


def sentence_data(searcher, index, items, dense_scale):
    """Per question: the sentence candidates of its top passages and which hold an answer."""
    data = []
    for item in items:
        result = searcher.search(item.question, 5)
        candidates = answer.sentence_candidates(result, index, dense_scale)
        if not candidates:
            continue
        keys = [match_key(a) for a in item.answers]
        labels = np.array(
            [
                result.hits[c.rank].passage.doc_id == item.context_doc
                and any(
                    k and k in match_key(result.hits[c.rank].passage.text[c.start : c.end])
                    for k in keys
                )
                for c in candidates
            ]
        )
        features = np.stack([c.features for c in candidates]).astype(np.float64)
        data.append((item.context_doc, features, labels))
    return data


def generated_sentence_data(searcher, index, rows, dense_scale):
    """Sentence data of rule-generated questions (bench/generate_questions.py) asked against
    an index of the reports they come from: a sentence is right when it lies in the
    question's report and holds its answer. The group key is the report, so folds hold
    whole reports out (their questions share sentences).

    Questions with the report's period added ("Năm 2024, …") are left out: the period is
    the report's, not the fact's (a 2024 report recalls 1994), so they would teach the
    sentence model that a sentence naming another year answers a question naming one."""
    items = [
        evaluation.EvalItem(
            id=row["id"],
            question=row["q"],
            gold=tuple(row["gold"]),
            answers=tuple(row["answer"]),
            context_doc=row["doc_id"],
        )
        for row in rows
        if not row.get("time_added")
    ]
    return [
        (f"report:{doc}", x, y) for doc, x, y in sentence_data(searcher, index, items, dense_scale)
    ]


def features_key(files, config, embedder_id, dense_scale) -> str:
    key = {
        "data": [sha256(f) for f in files],
        "pipeline": pipeline_fingerprint(config),
        "features": [search.FEATURES, search.SIGNALS],
        "embedder": embedder_id,
        "dense_scale": dense_scale,
    }
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qabot-fit"))
    parser.add_argument("--refresh", action="store_true", help="recompute candidate features")
    parser.add_argument("--write", action="store_true", help="write the model file")
    parser.add_argument("--check", action="store_true", help="compare with the committed file")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--date", default=time.strftime("%Y-%m-%d", time.gmtime()))
    parser.add_argument(
        "--generated",
        type=Path,
        help="rule-generated questions (bench/generate_questions.py) to fit the answer-sentence "
        "model on as well, asked against an index of --reports",
    )
    parser.add_argument("--reports", type=Path, default=ROOT / "data" / "reports")
    args = parser.parse_args()

    files = [args.data / name for name in FILE_NAMES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"missing training files: {', '.join(missing)} (see --data)", file=sys.stderr)
        return 2
    config = PassageConfig()
    embedder = BundledEmbedder()
    current = fitted.for_embedder(embedder.id)
    dense_scale = current.dense_scale
    work = args.work / features_key(files, config, embedder.id, dense_scale)
    work.mkdir(parents=True, exist_ok=True)

    sets = [evaluation.load_set(f) for f in files]
    items = [i for s in sets for i in s.items]
    both = evaluation.context_index(sets, work / "both", embedder, config)
    features_file = work / "features.pkl"
    if args.refresh or not features_file.exists():
        cache = both / "embedding_cache.sqlite"
        reg = evaluation.context_index([sets[0]], work / "reg", embedder, config, cache)
        wiki = evaluation.context_index([sets[1]], work / "wiki", embedder, config, cache)
        positives = ranker_data(search.Searcher(open_index(both), embedder, current), items)
        negatives = []
        for index_dir, s in ((wiki, sets[0]), (reg, sets[1])):
            other = search.Searcher(open_index(index_dir), embedder, current)
            negatives += [(x, sig) for _, x, _, sig in ranker_data(other, s.items)]
        features_file.write_bytes(pickle.dumps((positives, negatives)))
    positives, negatives = pickle.loads(features_file.read_bytes())
    ranked = [(c, x, y) for c, x, y, _ in positives]
    trainable = [(x, y) for _, x, y in ranked if y.any()]
    print(
        f"{len(positives)} questions, {len(negatives)} cross-domain negatives; "
        f"candidate recall {len(trainable) / len(ranked):.4f}",
        file=sys.stderr,
    )

    # Ranker: listwise over each question's candidates.
    ranker_lambda, ranker_scores = choose_lambda(ranked, RANKER_LAMBDAS, "ranker")
    ranker = LinearModel(
        search.FEATURES,
        fit_listwise(trainable, ranker_lambda).astype(np.float32),
        regularisation=ranker_lambda,
        held_out={"hit@1": round(ranker_scores[ranker_lambda], 4)},
    )
    ranker = LinearModel.from_dict(ranker.to_dict())  # the rounded weights that are written

    # Confidence: in-domain questions (1) against cross-domain ones (0), standardised for
    # fitting (cosines vary over a narrow range), then folded back.
    def inputs(x, signals):
        s = x @ ranker.weights
        return search.confidence_features(s, x, signals, int(np.argmax(s))).astype(np.float64)

    X_pos = np.stack([inputs(x, sig) for _, x, _, sig in positives])
    X_neg = np.stack([inputs(x, sig) for x, sig in negatives])
    X = np.vstack([X_pos, X_neg])
    y = np.concatenate([np.ones(len(X_pos)), np.zeros(len(X_neg))])
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    a_std, b_std = fit_logistic((X - mean) / scale, y, CONFIDENCE_LAMBDA)
    a, b = a_std / scale, b_std - float(np.sum(a_std * mean / scale))
    confidence_linear = LinearModel.from_dict(
        LinearModel(search.CONFIDENCE_FEATURES, a, b, CONFIDENCE_LAMBDA).to_dict()
    )
    p_pos = 1 / (1 + np.exp(-confidence_linear.score(X_pos.astype(np.float32))))
    p_neg = 1 / (1 + np.exp(-confidence_linear.score(X_neg.astype(np.float32))))
    curve = {t: (float(np.mean(p_pos >= t)), float(np.mean(p_neg < t))) for t in THRESHOLDS}
    print("threshold  found(answerable)  not-found(cross-domain)", file=sys.stderr)
    for t, (found, not_found) in curve.items():
        print(f"   {t:.2f}      {found:.4f}            {not_found:.4f}", file=sys.stderr)
    threshold = max(t for t, (found, _) in curve.items() if found >= FOUND_RATE)
    confidence = ConfidenceModel(
        replace(
            confidence_linear,
            held_out={
                "found_answerable": round(curve[threshold][0], 4),
                "not_found_cross_domain": round(curve[threshold][1], 4),
            },
        ),
        threshold,
    )

    # Answer sentences: listwise over the sentences of the top passages, with this ranker.
    models = FittedModels(embedder.id, dense_scale, ranker, current.sentence, confidence)
    searcher = search.Searcher(open_index(both), embedder, models)
    sentences = sentence_data(searcher, searcher.index, items, dense_scale)
    generated_provenance = None
    if args.generated:
        sentences += generated_sentences(args, embedder, models, dense_scale, work)
        generated_provenance = {
            "file": args.generated.name,
            "sha256": sha256(args.generated),
            "reports": sha256_folder(args.reports),
            "questions": sum(1 for g, _, _ in sentences if g.startswith("report:")),
        }
    sentence_lambda, sentence_scores = choose_lambda(sentences, SENTENCE_LAMBDAS, "sentence")
    sentence = LinearModel.from_dict(
        LinearModel(
            answer.SENTENCE_FEATURES,
            fit_listwise([(x, y) for _, x, y in sentences if y.any()], sentence_lambda),
            regularisation=sentence_lambda,
            held_out={"best_sentence_accuracy": round(sentence_scores[sentence_lambda], 4)},
        ).to_dict()
    )

    models = FittedModels(
        embedder.id,
        dense_scale,
        ranker,
        sentence,
        confidence,
        provenance={
            "fitted_by": "bench/fit_ranker.py",
            "date": args.date,
            "data": [
                {"file": f.name, "sha256": sha256(f), "questions": len(s.items)}
                for f, s in zip(files, sets, strict=True)
            ],
            "folds": f"{FOLDS}, grouped by context (seed 7); generated questions by report",
            "generated": generated_provenance,
            "passages": pipeline_fingerprint(config),
            "ranker_lambdas": {f"{k:g}": round(v, 4) for k, v in ranker_scores.items()},
            "sentence_lambdas": {f"{k:g}": round(v, 4) for k, v in sentence_scores.items()},
            "confidence_negatives": "questions asked against the other file's contexts",
            "threshold_rule": f"largest of {THRESHOLDS[0]}..{THRESHOLDS[-1]} keeping "
            f"{FOUND_RATE:.0%} of answerable questions found",
        },
    )
    sys.stdout.write(fitted.dumps(models))
    target = fitted.packaged_path(embedder.id)
    if args.check:
        return compare(models, fitted.load(target), args.tolerance)
    if args.write:
        print(f"wrote {fitted.save(models, target.parent)}", file=sys.stderr)
    return 0


def generated_sentences(args, embedder, models, dense_scale, work):
    """Sentence data of --generated against an index of --reports, built in --work."""
    from generate_questions import load_generated

    index_dir = work / "reports-index"
    build_index(args.reports, index_dir, embedder, wait_seconds=600)
    searcher = search.Searcher(open_index(index_dir), embedder, models)
    rows = load_generated(args.generated)
    return generated_sentence_data(searcher, searcher.index, rows, dense_scale)


def sha256_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compare(new: FittedModels, old: FittedModels, tolerance: float) -> int:
    """0 when every weight, intercept and threshold agrees within ``tolerance``."""
    worst = 0.0
    for name in ("ranker", "sentence"):
        a, b = getattr(new, name), getattr(old, name)
        if a.features != b.features:
            print(f"{name}: features differ", file=sys.stderr)
            return 1
        worst = max(worst, float(np.max(np.abs(a.weights - b.weights))))
    if (new.confidence is None) != (old.confidence is None):
        print("confidence: one side has none", file=sys.stderr)
        return 1
    if new.confidence is not None and old.confidence is not None:
        a, b = new.confidence.model, old.confidence.model
        worst = max(
            worst,
            float(np.max(np.abs(a.weights - b.weights))),
            abs(a.intercept - b.intercept),
            abs(new.confidence.threshold - old.confidence.threshold),
        )
    print(f"largest difference from the committed file: {worst:.6f}", file=sys.stderr)
    return 0 if worst <= tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
