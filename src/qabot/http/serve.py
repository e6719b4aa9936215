"""``serve``: run the API with uvicorn on a socket bound beforehand, until interrupted."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from qabot.config import Settings
from qabot.http.app import create_app
from qabot.http.schemas import EXAMPLE_QUESTION
from qabot.service import QabotError, QAService, freeze_loaded_objects

log = logging.getLogger("qabot.api")

NO_INDEX_YET = (
    "Cảnh báo: chưa có chỉ mục tài liệu; /ask sẽ trả lỗi 503 cho tới khi chỉ mục "
    "được tạo (lệnh: qabot index build)."
)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (and listen) before uvicorn starts, so port 0 works and the real port can be
    announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it. asyncio sets it only on sockets created with
        # proto IPPROTO_TCP, which this one is not: without it a keep-alive client waited
        # out its delayed ACK, 40 ms on every request after a connection's first.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        # Listening now, not when uvicorn starts: a client that reads the announced URL and
        # connects at once waits in the backlog instead of being refused.
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def public_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.upper())
    level = level if isinstance(level, int) else logging.INFO
    # A no-op when the CLI has configured logging; needed when serve() is called directly.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The root may be at WARNING (the CLI's default); request lines are INFO.
    logging.getLogger("qabot").setLevel(level)


def _announce(url: str) -> None:
    body = f'{{"question": "{EXAMPLE_QUESTION}", "top_k": 5}}'
    print(f"qabot API đang chạy tại {url} (tài liệu API: {url}/docs). Nhấn Ctrl+C để dừng.")
    print(f"Thử: curl -s {url}/ask -H 'Content-Type: application/json' -d '{body}'", flush=True)
    log.info("serving on %s", url)


def serve(
    service: QAService,
    settings: Settings,
    host: str,
    port: int,
    watch_docs: bool = False,
    extend: Callable[[FastAPI], object] | None = None,
) -> int:
    """Run the API with uvicorn until interrupted; the exit status for the command line.

    ``extend`` is called with the app before it runs: how the command line adds what shares
    this server (the Telegram webhook) without this package knowing about it. A QabotError
    it raises (a bad setting) ends serve with one line and status 1.
    """
    configure_logging(settings.log_level)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"Lỗi: không mở được địa chỉ {host}:{port} ({exc.strerror or exc}).", file=sys.stderr)
        return 1
    try:
        app = create_app(service, settings)
        if extend is not None:
            extend(app)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            access_log=False,  # it logs the query string, i.e. the question; ours does not
            timeout_graceful_shutdown=10,
        )
        server = uvicorn.Server(config)
        service.watch(settings.reload_seconds)  # a new index version is served without restart
        if watch_docs:
            service.watch_docs(settings.reload_seconds)
        if service.index is None:
            print(NO_INDEX_YET, file=sys.stderr)
        _announce(public_url(host, sock.getsockname()[1]))
        freeze_loaded_objects()
        server.run(sockets=[sock])
        return 0 if server.started else 1
    except QabotError as exc:  # no docs folder to watch; webhook settings
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    finally:
        service.close()
        sock.close()
