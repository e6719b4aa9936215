"""bench/fit_ranker.py's backward elimination of structure features, on synthetic groups."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# bench/ scripts import their neighbours by name (fit_ranker imports generate_questions).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import fit_ranker

from qabot import search


def groups(rng, n, context_prefix):
    """Questions whose answer is told by the base features alone; every structure column
    is 0 (the held-out questions do not exercise those features)."""
    out = []
    for q in range(n):
        x = np.zeros((6, len(search.FEATURES)))
        x[:, : len(search.BASE_FEATURES)] = rng.random((6, len(search.BASE_FEATURES)))
        y = np.zeros(6, dtype=bool)
        y[int(np.argmax(x[:, 0] + 0.3 * x[:, 2]))] = True
        out.append((f"{context_prefix}{q % 12}", x, y))
    return out


def test_a_feature_the_held_out_questions_cannot_measure_is_not_eliminated():
    rng = np.random.default_rng(3)
    uit = groups(rng, 60, "context-")
    generated = groups(rng, 20, "report-")
    ranker, how = fit_ranker.fit_ranker_model(uit, generated)
    # Leaving out an all-zero column changes no held-out score: a tie keeps the feature.
    assert how["ranker_dropped"] == {}
    assert ranker.features == search.FEATURES
