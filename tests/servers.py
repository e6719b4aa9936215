"""A real uvicorn server on an ephemeral 127.0.0.1 port, for tests; always stopped."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


@contextmanager
def uvicorn_server(
    app: FastAPI, lifespan: str = "off", access_log: bool = False
) -> Iterator[tuple[str, Callable[[], None]]]:
    """(base URL, stop): ``stop`` ends the server early (a test of a vanished server); it is
    called on exit in any case. ``lifespan="on"`` runs the app's startup (a webhook's bot);
    ``access_log`` turns on uvicorn's own request lines (logger "uvicorn.access")."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=access_log, lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", stop
    finally:
        stop()
