"""What browsing the report list costs with a large library: the catalogue's one-off build
per index version, a page, a filtered page, and the admin page's file sizes.

    python bench/catalogue.py --index DIR [--docs DIR] [--repeat 50]

Prints one JSON line: documents, build_ms (sorting and folding every title once per
version), page_ms, filter_ms (a two-word unaccented filter; the words are the first title's),
filter_matches, sizes_page_ms (stat of one admin page of 50 files) and sizes_all_ms (stat
of every file, what the admin page did before it was paged).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from qabot.catalogue import Catalogue, query_words
from qabot.index import open_index


def median_ms(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def stat_all(docs: Path, doc_ids: list[str]) -> None:
    for doc_id in doc_ids:
        try:
            (docs / doc_id).stat()
        except OSError:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    documents = open_index(args.index).documents
    started = time.perf_counter()
    catalogue = Catalogue(documents)
    build_ms = (time.perf_counter() - started) * 1000
    words = " ".join(query_words(catalogue.documents[0].title)[:2]) if documents else ""
    result = {
        "documents": len(documents),
        "build_ms": round(build_ms, 1),
        "page_ms": median_ms(lambda: catalogue.page(offset=len(documents) // 2), args.repeat),
        "filter_ms": median_ms(lambda: catalogue.page(words), args.repeat),
        "filter_matches": catalogue.page(words).total,
    }
    if args.docs is not None:
        page = [d.doc_id for d in catalogue.page(limit=50).documents]
        every = [d.doc_id for d in catalogue.documents]
        result["sizes_page_ms"] = median_ms(lambda: stat_all(args.docs, page), args.repeat)
        result["sizes_all_ms"] = median_ms(lambda: stat_all(args.docs, every), 5)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
