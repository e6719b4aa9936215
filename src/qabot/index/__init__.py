"""The versioned index: FAISS vectors, BM25, SQLite metadata and the embedding cache.

layout: the folders on disk (versions of segments, CURRENT, locks, checksums); loaded: one
version in memory (LoadedIndex over its segments, open_index); build: incremental, atomic
builds by segments, tombstones and merges; verify: a report on what is damaged.
"""

from qabot.errors import (
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexStoreError,
)
from qabot.index.build import BuildSummary, build_index
from qabot.index.loaded import LoadedIndex, open_index

__all__ = [
    "BuildSummary",
    "IndexBusyError",
    "IndexDamagedError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexStoreError",
    "LoadedIndex",
    "build_index",
    "open_index",
]
