"""Fitted models as data: model files, feature checks, per-embedder calibration."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from qabot import fitted
from qabot.answer import SENTENCE_FEATURES
from qabot.fitted import LinearModel, ModelFileError
from qabot.search import CONFIDENCE_FEATURES, FEATURES, Searcher


def test_the_bundled_embedder_has_its_own_model_file(embedder):
    models = fitted.for_embedder(embedder.id)
    assert models.embedder_id == embedder.id
    assert models.calibrated
    assert models.ranker.features == FEATURES
    assert models.sentence.features == SENTENCE_FEATURES
    assert models.confidence.model.features == CONFIDENCE_FEATURES
    assert 0.0 < models.confidence.threshold < 1.0
    assert models.provenance  # says what it was fitted on


def test_a_model_file_round_trips_byte_for_byte(embedder, tmp_path):
    models = fitted.for_embedder(embedder.id)
    written = fitted.save(models, tmp_path)
    assert written.name == fitted.slug(embedder.id) + ".json"
    assert written.read_text() == fitted.dumps(fitted.load(written))
    assert fitted.packaged_path(embedder.id).read_text() == written.read_text()


def test_features_are_matched_by_name(service, embedder):
    models = fitted.for_embedder(embedder.id)
    reordered = LinearModel(tuple(reversed(models.ranker.features)), models.ranker.weights)
    with pytest.raises(ModelFileError, match="refit"):
        Searcher(service.index, embedder, replace(models, ranker=reordered))
    renamed = LinearModel(("dense", *models.ranker.features[1:-1], "other"), models.ranker.weights)
    with pytest.raises(ModelFileError):
        Searcher(service.index, embedder, replace(models, ranker=renamed))


def test_weights_are_constructor_arguments(service, embedder):
    """A Searcher uses the weights it is given; no module global decides."""
    models = fitted.for_embedder(embedder.id)
    question = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
    usual = Searcher(service.index, embedder, models).search(question)
    only_bm25 = np.array([f == "bm25" for f in FEATURES], dtype=np.float32)
    lexical = Searcher(
        service.index, embedder, replace(models, ranker=LinearModel(FEATURES, only_bm25))
    ).search(question, 10)
    scores = [h.score for h in lexical.hits]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) == pytest.approx(1.0)  # bm25 / best bm25 of the best passage
    assert usual.hits[0].score != lexical.hits[0].score


def test_another_embedder_gets_no_confidence_model(tmp_path):
    models = fitted.for_embedder("sentence-transformers/some-local-model", tmp_path)
    assert models.embedder_id == "sentence-transformers/some-local-model"
    assert not models.calibrated
    assert models.provenance["borrowed_from"] == fitted.DEFAULT_EMBEDDER_ID


def test_a_calibration_in_the_index_folder_wins(embedder, tmp_path):
    models = fitted.for_embedder(embedder.id)
    tuned = replace(models, dense_scale=0.05, provenance={"fitted_by": "test"})
    fitted.save(tuned, tmp_path / fitted.MODELS_DIR)
    assert fitted.for_embedder(embedder.id, tmp_path).dense_scale == 0.05
    assert fitted.for_embedder(embedder.id).dense_scale == models.dense_scale


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("ranker"),
        lambda d: d.update(format=99),
        lambda d: d["ranker"]["weights"].pop(),
        lambda d: d.update(confidence={"features": ["score"], "weights": [1.0]}),
    ],
)
def test_broken_model_files_are_refused_clearly(embedder, tmp_path, damage):
    data = json.loads(fitted.dumps(fitted.for_embedder(embedder.id)))
    damage(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelFileError):
        fitted.load(path)


def test_an_embedder_without_a_model_file_is_rank_only_until_calibrated(
    tiny_model_dir, docs_copy, tmp_path
):
    from qabot.embedding import create_embedder
    from qabot.index import build_index
    from qabot.service import QAService

    from .test_cli import qabot

    tiny = create_embedder(f"sentence-transformers:{tiny_model_dir}")
    index_dir = tmp_path / "index"
    build_index(docs_copy, index_dir, tiny)
    service = QAService(index_dir, tiny)
    assert service.status()["calibration"] == "rank-only"
    assert not service._require().models.calibrated  # the bundled confidence is not borrowed
    assert not service.ask("Giá vàng hôm nay bao nhiêu một lượng?").found
    on_topic = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
    assert service.ask(on_topic).found  # rank-only: both retrievers agree, words covered

    result = qabot(
        "calibrate",
        "--index",
        str(index_dir),
        "--docs",
        str(docs_copy),
        "--embedder",
        f"sentence-transformers:{tiny_model_dir}",
        "--questions",
        "120",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    path = index_dir / fitted.MODELS_DIR / f"{fitted.slug(tiny.id)}.json"
    assert summary["path"] == str(path) and path.is_file()
    assert summary["questions"] >= 40
    assert 0.0 < summary["threshold"] < 1.0
    assert summary["found_answerable"] >= 0.9
    calibrated = fitted.load(path)
    assert calibrated.embedder_id == tiny.id and calibrated.calibrated
    assert calibrated.provenance["fitted_by"] == "qabot calibrate"
    assert QAService(index_dir, tiny).status()["calibration"] == "fitted"
    # The shipped files are untouched.
    assert not fitted.packaged_path(tiny.id).exists()
