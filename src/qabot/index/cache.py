"""Embedding cache: (embedder id, passage text hash) -> vector, in SQLite.

Shared by every index version in a folder, so rebuilding an unchanged corpus embeds nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Committed batches survive a killed build either way; NORMAL only skips the fsync
        # of each commit (a power cut may lose the last batches: a cache, embedded again).
        # Each fsync cost 5 ms, a third of a build's time on a corpus embedded cheaply.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (embedder TEXT NOT NULL, text_hash TEXT NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (embedder, text_hash))"
        )
        self._db.commit()

    def get_many(self, embedder: str, hashes: list[str], dim: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT text_hash, vector FROM vectors"
                f" WHERE embedder = ? AND text_hash IN ({marks})",
                [embedder, *chunk],
            )
            for key, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape[0] == dim:
                    found[key] = vector
        return found

    def put_many(self, embedder: str, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [
                    (embedder, k, np.asarray(v, dtype=np.float32).tobytes())
                    for k, v in items.items()
                ],
            )

    def close(self) -> None:
        self._db.close()


def check_cache(path: Path) -> str | None:
    """What is wrong with an embedding cache file, or None when it is sound (or absent)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
            db.execute("SELECT count(*) FROM vectors").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:3])
