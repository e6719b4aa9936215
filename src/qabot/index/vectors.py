"""The FAISS vector index, its type chosen in one place, by the corpus's size.

Up to ``exact_size_limit(dim)`` vectors the index is exact (a flat inner-product scan): at
that size a scan costs about a millisecond a question. Past it, an inverted-file index
whose number of probed lists is chosen when it is built, by measuring recall@40 against
exact search on sample queries until it reaches ``CALIBRATION_RECALL`` (``TARGET_RECALL``
with a margin); the choice is stored in the index file. IVF was preferred to HNSW by
bench/scale.py --ann: on a small model's vectors of 30k generated sentences HNSW reached
recall@40 0.64-0.95 (M 16 or 32, efSearch 64-256; the former choice, M 32 / efSearch 128,
0.91) where IVF reached 0.998 probing 16 of 346 lists; it builds several times faster (an
HNSW graph of a million vectors takes many minutes on two cores) and it keeps every
vector, so ``reconstruct(row)`` still works (through a direct map from row to list
position).

The lists hold each vector in half precision (IVF with an fp16 scalar quantizer), and an
IVF index is read into memory when loaded, not memory-mapped. On the 64-dim vectors of
994,701 passages, probing 384 of 1,994 lists: memory-mapped float32 lists took 4.9 ms a
question, the same lists in memory 2.3 ms, fp16 lists in memory 1.4 ms, with the same
recall@40 (0.9986 on questions). Mapping saved no memory either: a question reads a fifth
of the lists, so after a few hundred questions every list is resident, 256 MB of float32
against 128 MB of fp16 in memory. Half precision moves a cosine by about 1e-4.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

# A flat scan reads n * dim floats a question: at this many (about 31k passages of a 64-dim
# model, 5k of the bundled 384-dim one) it costs about a millisecond on one core; an IVF
# index answers 200k vectors in about as long (bench/scale.py --ann: flat 35 ms at 200k).
EXACT_FLOATS = 2_000_000

TARGET_RECALL = 0.98
# Chosen with a margin: the sample queries only estimate the recall of real questions.
CALIBRATION_RECALL = 0.99
CALIBRATION_QUERIES = 256
K = 40  # the dense candidates search.py asks for
NPROBES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
MIN_NPROBE = 16


def exact_size_limit(dim: int) -> int:
    """The largest number of ``dim``-dimensional vectors searched exactly."""
    return max(1, EXACT_FLOATS // max(dim, 1))


def ivf_lists(size: int) -> int:
    """Lists of an IVF index of ``size`` vectors: about 2 * sqrt(n) (a question scans the
    centroids and a few lists, both growing as sqrt(n)), and at least 64 vectors a list so
    that k-means has enough points to train on (a tiny index past a lowered limit: one list)."""
    return max(1, int(min(2 * math.sqrt(size), size // 64, 16_384)))


def make_vector_index(dim: int, size: int, exact_limit: int | None = None) -> faiss.Index:
    """Inner product on normalised vectors (cosine). Exact up to the limit; past it an IVF
    index that must be trained before vectors are added (build_vector_index does both)."""
    limit = exact_size_limit(dim) if exact_limit is None else exact_limit
    if size <= limit:
        return faiss.IndexFlatIP(dim)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, ivf_lists(size), faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = 1234  # the same vectors always give the same index
    return index


def build_vector_index(vectors: np.ndarray, exact_limit: int | None = None) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = make_vector_index(vectors.shape[1], vectors.shape[0], exact_limit)
    if not len(vectors):
        return index
    if isinstance(index, faiss.IndexIVF):
        nlist = index.nlist
        # k-means on a sample: 64 points a list are plenty and keep training seconds long.
        sample = np.random.default_rng(0).permutation(len(vectors))[: 64 * nlist]
        index.train(vectors[np.sort(sample)])
        index.add(vectors)
        index.make_direct_map()  # reconstruct(row) for the ranker's dense feature
        index.nprobe = choose_nprobe(index, vectors)
        log.info("IVF index of %d vectors: %d lists, %d probed", len(vectors), nlist, index.nprobe)
        return index
    index.add(vectors)
    return index


def sample_queries(vectors: np.ndarray, count: int = CALIBRATION_QUERIES) -> np.ndarray:
    """Queries like a question's vector: stored vectors moved by noise to a cosine of about
    0.6-0.9 with where they started, so that their neighbours are not trivially themselves."""
    rng = np.random.default_rng(7)
    rows = rng.choice(len(vectors), size=min(count, len(vectors)), replace=False)
    dim = vectors.shape[1]
    scale = rng.uniform(0.5, 1.3, size=(len(rows), 1)) / math.sqrt(dim)
    queries = vectors[rows] + scale * rng.standard_normal((len(rows), dim))
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(queries, dtype=np.float32)


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Each query's k-th best exact score (ties at it count as found)."""
    k = min(k, len(vectors))
    kth = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), 32):
        scores = queries[start : start + 32] @ vectors.T
        kth[start : start + 32] = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    return kth


def recall(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, k: int = K) -> float:
    """Mean share of the exact top k (inner product) that ``index`` returns."""
    k = min(k, len(vectors))
    if not k or not len(queries):
        return 1.0
    return _recall(index, vectors, queries, exact_neighbours(vectors, queries, k), k)


def _recall(index, vectors, queries, kth, k) -> float:
    _, found = index.search(queries, k)
    hits = 0
    for q, rows in enumerate(found):
        rows = rows[rows >= 0]
        hits += int(np.sum(vectors[rows] @ queries[q] >= kth[q] - 1e-5))
    return hits / (k * len(queries))


def choose_nprobe(index: faiss.IndexIVF, vectors: np.ndarray) -> int:
    """The fewest probed lists whose measured recall@40 reaches CALIBRATION_RECALL."""
    queries = sample_queries(vectors)
    k = min(K, len(vectors))
    kth = exact_neighbours(vectors, queries, k)
    for nprobe in [p for p in NPROBES if MIN_NPROBE <= p < index.nlist]:
        index.nprobe = nprobe
        if _recall(index, vectors, queries, kth, k) >= CALIBRATION_RECALL:
            return nprobe
    return index.nlist  # every list: exact


def describe(index: faiss.Index) -> str:
    """The index's type and settings, for logs and benches."""
    if isinstance(index, faiss.IndexIVF):
        return f"ivf(nlist={index.nlist},nprobe={index.nprobe})"
    return "flat"


def save_vector_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def search_threads() -> None:
    """One OpenMP thread for FAISS searches in the calling thread (OpenMP settings are per
    thread). qabot searches one question vector at a time, which gains nothing from more;
    on a busy two-core machine the threads' spin-waits cost more than the search itself: a
    flat search of 20k vectors took 24-45 ms with two threads and 0.3-0.7 ms with one."""
    faiss.omp_set_num_threads(1)


def load_vector_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Read an index. A flat index's vectors are memory-mapped (``mmap``), so only the pages
    a question touches are read; an IVF index is read into memory (see the module's notes:
    its mapped lists searched at half the speed and ended up resident anyway). The loading
    thread searches with one OpenMP thread from then on (search_threads)."""
    search_threads()
    with open(path, "rb") as file:
        fourcc = file.read(4)
    if not mmap or fourcc.startswith(b"Iw"):  # "Iw..": the IVF kinds
        return faiss.read_index(str(path))
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


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
