"""A real `qabot serve` on 127.0.0.1 (an ephemeral port) over temporary copies of the
sample reports and their index, for the load and fuzz benches; always stopped.

The index is copied from --index when it holds one (default: embeddings/), else built
from the reports into the temporary folder (a minute or two with the bundled embedder).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports"
DEFAULT_INDEX = ROOT / "embeddings"
ADMIN_TOKEN = "bench-admin-token-0123456789"
ANNOUNCEMENT = "qabot API đang chạy tại "
START_TIMEOUT_SECONDS = 300.0


def _copy_index(source: Path, target: Path, docs: Path) -> None:
    if (source / "CURRENT").is_file():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("build.lock"))
        return
    from qabot.embedding import BundledEmbedder
    from qabot.index import build_index

    print(f"no index in {source}: building one of {docs}", file=sys.stderr)
    build_index(docs, target, BundledEmbedder())


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


@contextmanager
def loopback_server(
    index: Path = DEFAULT_INDEX, docs: Path = REPORTS, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Path]]:
    """(base URL, temporary folder) of a running `qabot serve`; stopped on exit (SIGINT,
    then SIGKILL after 20 s). Its log is the folder's server.log."""
    with tempfile.TemporaryDirectory(prefix="qabot-bench-") as tmp:
        folder = Path(tmp)
        shutil.copytree(docs, folder / "docs")
        _copy_index(index, folder / "index", folder / "docs")
        server_env = {
            **os.environ,
            "QABOT_DOCS_DIR": str(folder / "docs"),
            "QABOT_INDEX_DIR": str(folder / "index"),
            "QABOT_ADMIN_TOKEN": ADMIN_TOKEN,
            "QABOT_LOG_DB": "off",
            "QABOT_LOG_LEVEL": "WARNING",
            "QABOT_RELOAD_SECONDS": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **(env or {}),
        }
        command = [sys.executable, "-c", "from qabot.cli import main; main()", "serve"]
        log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=folder,
            env=server_env,
            start_new_session=True,
        )
        try:
            lines: queue.Queue[str] = queue.Queue()
            reader = threading.Thread(target=_read_lines, args=(process.stdout, lines))
            reader.daemon = True
            reader.start()
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            url = None
            while url is None:
                if process.poll() is not None:
                    raise RuntimeError(f"qabot serve exited: {(folder / 'server.log').read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("qabot serve did not start in time")
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    continue
                if line.startswith(ANNOUNCEMENT):
                    url = line[len(ANNOUNCEMENT) :].split()[0]
            yield url, folder
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            log.close()
