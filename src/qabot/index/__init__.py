"""The versioned index: FAISS vectors, BM25, SQLite metadata and the embedding cache."""

from qabot.index.build import BuildSummary, build_index
from qabot.index.store import (
    IndexBusyError,
    IndexMismatchError,
    IndexMissingError,
    IndexStoreError,
    LoadedIndex,
    open_index,
)

__all__ = [
    "BuildSummary",
    "IndexBusyError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexStoreError",
    "LoadedIndex",
    "build_index",
    "open_index",
]
