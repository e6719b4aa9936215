"""The FAISS vector index, its type chosen in one place."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Exact search is fast enough up to this many passages; past it, a graph index.
EXACT_LIMIT = 200_000


def make_vector_index(dim: int, size: int) -> faiss.Index:
    """Inner product on normalised vectors (cosine). Exact at report-corpus sizes."""
    if size <= EXACT_LIMIT:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 128
    return index


def build_vector_index(vectors: np.ndarray) -> faiss.Index:
    index = make_vector_index(vectors.shape[1], vectors.shape[0])
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def save_vector_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_vector_index(path: Path) -> faiss.Index:
    # Memory-mapped: the vectors stay in the page cache, shared with a reloaded version
    # and not counted twice while a service switches versions.
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)


def save_sentences(folder: Path, spans: np.ndarray, vectors: np.ndarray) -> None:
    """Sentence spans (passage row, start, end) and their vectors, half precision."""
    np.save(folder / "sentence_spans.npy", spans.astype(np.int32))
    np.save(folder / "sentence_vectors.npy", vectors.astype(np.float16))


def load_sentences(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    # Memory-mapped: only the sentences of candidate passages are ever read.
    return (
        _load_mapped(folder / "sentence_spans.npy"),
        np.load(folder / "sentence_vectors.npy", mmap_mode="r"),
    )


def _load_mapped(path: Path) -> np.ndarray:
    # An empty array cannot be memory-mapped.
    return np.load(path, mmap_mode="r" if path.stat().st_size > 4096 else None)
