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


def _scored_groups(rng, n=80, columns=3):
    out = []
    for _ in range(n):
        x = rng.random((6, columns))
        y = np.zeros(6, dtype=bool)
        y[int(np.argmax(x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.3, 6)))] = True
        out.append((x, y))
    return out


def test_the_penalty_does_not_depend_on_a_features_units():
    # A feature given in hundredths (a reciprocal rank) must be worth what it is worth in
    # units: the fitted scores are the same, its weight a hundred times larger.
    rng = np.random.default_rng(1)
    groups = _scored_groups(rng)
    units = np.array([1.0, 0.01, 1.0])
    weights = fit_ranker.fit_standardised(groups, 0.1)
    rescaled = fit_ranker.fit_standardised([(x * units, y) for x, y in groups], 0.1)
    np.testing.assert_allclose(rescaled * units, weights, rtol=1e-3, atol=1e-4)


def test_an_unpenalised_feature_keeps_the_weight_the_data_give_it():
    rng = np.random.default_rng(2)
    groups = _scored_groups(rng)
    penalised = fit_ranker.fit_standardised(groups, 1.0)
    free = fit_ranker.fit_standardised(groups, 1.0, [True, False, True])
    assert free[1] > 3 * penalised[1] > 0
    assert free[0] < penalised[0] * 1.5  # the penalised columns are still held back
