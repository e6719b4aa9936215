"""Fit the reranker and the confidence model of qabot.search on the UIT train files.

    python bench/fit_ranker.py [--work /tmp/qabot-fit] [--refresh]

Only the train files are used. Folds group questions by their context, so no context is in
both the fitting and the scoring part of a fold. Prints held-out hit@1 per regularisation
strength, the chosen weights (to paste into src/qabot/search.py), and the found/not-found
curve the threshold is chosen from. Negatives for the confidence model are questions asked
against a corpus of the other domain (regulation questions against Wikipedia contexts and
the reverse): the corpus cannot answer them.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from qabot import evaluation, search
from qabot.embedding import BundledEmbedder
from qabot.index import build_index, open_index
from qabot.index.store import CACHE
from qabot.passages import PassageConfig
from qabot.text import match_key

ROOT = Path(__file__).resolve().parents[1]
UIT = ROOT.parent / "shared" / "eval" / "uit"
FILES = [UIT / "train_reg.json", UIT / "train_wiki.json"]


def build(sets, work: Path, name: str, embedder, cache_from: Path | None, config=None):
    docs = evaluation.write_context_corpus(sets, work / name)
    index_dir = docs.parent / "index"
    if cache_from is not None and not (index_dir / CACHE).exists() and cache_from.exists():
        index_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(cache_from, index_dir / CACHE)
    build_index(docs, index_dir, embedder, config)
    return index_dir


def collect(searcher, items):
    """Per question: candidate features, labels, and the query's doc context."""
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


def ranker_loss(w, groups, lam):
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
    loss += lam * (w @ w)
    grad += 2 * lam * w
    return loss, grad


def fit_ranker(groups, lam):
    w0 = np.zeros(groups[0][0].shape[1])
    result = minimize(ranker_loss, w0, args=(groups, lam), jac=True, method="L-BFGS-B")
    return result.x


def hit_at_1(w, data):
    hits = [y[np.argmax(x @ w)] for _, x, y in data if len(y)]
    return float(np.mean(hits)) if hits else 0.0


def folds_of(data, k=5):
    contexts = sorted({c for c, _, _ in data})
    rng = np.random.default_rng(7)
    order = rng.permutation(len(contexts))
    fold_of = {contexts[j]: i % k for i, j in enumerate(order)}
    return [fold_of[c] for c, _, _ in data]


def confidence_inputs(w, x, signals):
    s = x @ w
    return search.confidence_features(s, x, signals, int(np.argmax(s))).astype(np.float64)


def fit_logistic(X, y, lam):
    def loss(params):
        w, b = params[:-1], params[-1]
        z = X @ w + b
        p = 1 / (1 + np.exp(-z))
        nll = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        value = nll + lam * (w @ w)
        g = X.T @ (p - y) / len(y)
        return value, np.append(g + 2 * lam * w, np.mean(p - y))

    result = minimize(loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B")
    return result.x[:-1], result.x[-1]


def fit_sentences(work: Path, ranker_weights: np.ndarray) -> None:
    """The short-answer sentence model: listwise over the sentences of the top passages."""
    from qabot import answer

    search.RANKER_WEIGHTS = ranker_weights.astype(np.float32)
    embedder = BundledEmbedder()
    sets = [evaluation.load_set(f) for f in FILES]
    index = open_index(next((work / "both").glob("*/index")))
    searcher = search.Searcher(index, embedder)
    data = []
    for item in (i for s in sets for i in s.items):
        result = searcher.search(item.question, 5)
        candidates = answer.sentence_candidates(result, index)
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
        data.append(
            (
                item.context_doc,
                np.stack([c.features for c in candidates]).astype(np.float64),
                labels,
            )
        )
    folds = folds_of(data)
    best_lam, best_score = 0.0, -1.0
    for lam in (0.0, 1e-3, 1e-2, 1e-1):
        scores = []
        for f in range(5):
            train = [(x, y) for (c, x, y), g in zip(data, folds, strict=True) if g != f and y.any()]
            test = [d for d, g in zip(data, folds, strict=True) if g == f]
            scores.append(hit_at_1(fit_ranker(train, lam), test) * len(test))
        mean = sum(scores) / len(data)
        print(f"sentence lambda {lam:g}: held-out best-sentence accuracy {mean:.4f}")
        if mean > best_score:
            best_lam, best_score = lam, mean
    ws = fit_ranker([(x, y) for _, x, y in data if y.any()], best_lam)
    current = answer.SENTENCE_WEIGHTS.astype(np.float64)
    print(
        f"current sentence weights: {hit_at_1(current, data):.4f}; "
        f"fitted (all data): {hit_at_1(ws, data):.4f}"
    )
    print("SENTENCE_WEIGHTS = " + np.array2string(ws, precision=4, separator=", "))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/qabot-fit"))
    parser.add_argument("--refresh", action="store_true", help="recompute candidate features")
    parser.add_argument("--max-chars", type=int, default=PassageConfig().max_chars)
    parser.add_argument("--sentences", action="store_true", help="also fit the answer sentences")
    args = parser.parse_args()
    config = PassageConfig(max_chars=args.max_chars)
    args.work = args.work / config.fingerprint()
    args.work.mkdir(parents=True, exist_ok=True)
    features_file = args.work / "features.pkl"

    if args.refresh or not features_file.exists():
        embedder = BundledEmbedder()
        sets = [evaluation.load_set(f) for f in FILES]
        combined = build(sets, args.work, "both", embedder, None, config)
        cache = combined / CACHE
        reg_only = build([sets[0]], args.work, "reg", embedder, cache, config)
        wiki_only = build([sets[1]], args.work, "wiki", embedder, cache, config)
        searcher = search.Searcher(open_index(combined), embedder)
        positives = collect(searcher, [i for s in sets for i in s.items])
        negatives = []
        for index_dir, s in ((wiki_only, sets[0]), (reg_only, sets[1])):
            other = search.Searcher(open_index(index_dir), embedder)
            for i in s.items:
                c = other.candidates(i.question)
                negatives.append((c.features.astype(np.float64), c.signals))
        features_file.write_bytes(pickle.dumps((positives, negatives)))
    positives, negatives = pickle.loads(features_file.read_bytes())
    ranked = [(c, x, y) for c, x, y, _ in positives]
    print(f"{len(positives)} questions, {len(negatives)} cross-domain negatives", file=sys.stderr)

    names = search.FEATURES
    folds = folds_of(ranked)
    current = search.RANKER_WEIGHTS.astype(np.float64)
    print(f"current weights: hit@1 {hit_at_1(current, ranked):.4f} (all data)")
    trainable = [(x, y) for _, x, y in ranked if y.any()]
    recall = len(trainable) / len(ranked)
    print(f"candidate recall (a gold passage among candidates): {recall:.4f}")

    best_lam, best_score = None, -1.0
    for lam in (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0):
        scores = []
        for f in range(5):
            train = [
                (x, y) for (c, x, y), g in zip(ranked, folds, strict=True) if g != f and y.any()
            ]
            test = [d for d, g in zip(ranked, folds, strict=True) if g == f]
            scores.append(hit_at_1(fit_ranker(train, lam), test))
        mean = float(np.mean(scores))
        print(f"ranker lambda {lam:g}: held-out hit@1 {mean:.4f} (folds {np.round(scores, 3)})")
        if mean > best_score:
            best_lam, best_score = lam, mean
    w = fit_ranker(trainable, best_lam)
    print(f"chosen lambda {best_lam:g}; all-data hit@1 {hit_at_1(w, ranked):.4f}")
    print("RANKER_WEIGHTS = " + np.array2string(w, precision=4, separator=", "))
    for name, value in zip(names, w, strict=True):
        print(f"   {name:18s} {value:+.4f}")

    # Confidence: in-domain questions (1) against cross-domain ones (0).
    X_pos = np.stack([confidence_inputs(w, x, sig) for _, x, _, sig in positives])
    X_neg = np.stack([confidence_inputs(w, x, sig) for x, sig in negatives])
    X = np.vstack([X_pos, X_neg])
    y = np.concatenate([np.ones(len(X_pos)), np.zeros(len(X_neg))])
    # Standardised for fitting (cosines vary over a narrow range), then folded back.
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    a_std, b_std = fit_logistic((X - mean) / scale, y, 1e-4)
    a, b = a_std / scale, b_std - float(np.sum(a_std * mean / scale))
    print("CONFIDENCE_WEIGHTS = " + np.array2string(a, precision=4, separator=", "))
    print(f"CONFIDENCE_INTERCEPT = {b:.4f}")
    p_pos = 1 / (1 + np.exp(-(X_pos @ a + b)))
    p_neg = 1 / (1 + np.exp(-(X_neg @ a + b)))
    print("threshold  found(answerable)  not-found(cross-domain)")
    for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        print(f"   {t:.2f}      {np.mean(p_pos >= t):.4f}            {np.mean(p_neg < t):.4f}")
    if args.sentences:
        fit_sentences(args.work, w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
