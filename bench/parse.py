"""Parse-time bounds of hostile files, and what checking an index version costs on open.

    python bench/parse.py [--index DIR]

- nested HTML ("<b>x" repeated, never closed) at 80 KB and 800 KB: time grows linearly
  (issue 18 measured 29 s for 80 KB before the parser kept counters instead of scanning
  its element stack);
- a .docx of about 60 KB holding 20 MB of XML (a zip bomb): refused from the zip directory;
- opening the sample-report index: sha256 of every file vs sizes only vs no check. The
  index is built into a temporary folder, reusing the embedding cache of --index (default
  embeddings/) so nothing is embedded when it is warm.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import damaged  # noqa: E402

from qabot.embedding import BundledEmbedder  # noqa: E402
from qabot.index import build_index, open_index  # noqa: E402
from qabot.index.layout import CACHE, current_version, verify_version  # noqa: E402
from qabot.ingest import IngestError, load_document  # noqa: E402


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def parse_times(folder: Path) -> None:
    results = {}
    for kilobytes in (80, 800):
        path = folder / f"nested-{kilobytes}.html"
        path.write_bytes(damaged.nested_html(kilobytes))
        results[kilobytes] = best_of(3, lambda p=path: load_document(p, folder))
        print(f"nested HTML {kilobytes:4d} KB: {results[kilobytes]:.3f} s to parse and clean")
    print(f"800 KB / 80 KB time ratio: {results[800] / results[80]:.1f} (10 = linear)")

    bomb = folder / "bomb.docx"
    bomb.write_bytes(damaged.docx_zip_bomb(20))

    def refuse() -> None:
        try:
            load_document(bomb, folder)
        except IngestError:
            return
        raise AssertionError("the zip bomb was accepted")

    seconds = best_of(3, refuse)
    print(
        f"docx of {bomb.stat().st_size // 1024} KB holding 20 MB of XML: refused in {seconds:.3f} s"
    )


def open_times(index_source: Path, folder: Path) -> None:
    embedder = BundledEmbedder()
    index_dir = folder / "index"
    index_dir.mkdir()
    if (index_source / CACHE).is_file():
        shutil.copy(index_source / CACHE, index_dir / CACHE)
    started = time.perf_counter()
    summary = build_index(ROOT / "data" / "reports", index_dir, embedder)
    print(
        f"index build: {summary.passages} passages, {summary.embedded} embedded, "
        f"{time.perf_counter() - started:.1f} s"
    )
    version = current_version(index_dir)
    size = sum(p.stat().st_size for p in (index_dir / "versions" / version).iterdir())
    sha = best_of(5, lambda: verify_version(index_dir, version, hashes=True))
    sizes = best_of(5, lambda: verify_version(index_dir, version, hashes=False))
    opened = best_of(5, lambda: open_index(index_dir, embedder.id))
    print(f"version files: {size / 1024 / 1024:.1f} MB")
    print(f"verify with sha256: {sha * 1000:.1f} ms; sizes only: {sizes * 1000:.2f} ms")
    print(f"open_index (sha256 check included): {opened * 1000:.1f} ms")
    print(f"share of open time spent on checksums: {sha / opened:.0%}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        parse_times(folder)
        open_times(args.index, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
