"""A server in a thread of this process, on a free loopback port: for
notebooks, tests and benchmarks that call the HTTP API of their own app."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


class BackgroundServer:
    """uvicorn serving ``app`` on 127.0.0.1 from a daemon thread until ``stop``;
    HTTPS with ``tls`` (certificate and key PEM files)."""

    def __init__(self, app: Any, port: int | None = None, start_seconds: float = 30.0,
                 tls: tuple[str, str] | None = None):
        import uvicorn

        self.port = port or _free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        cert, key = tls or (None, None)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ssl_certfile=cert, ssl_keyfile=key))
        self.thread = threading.Thread(target=self.server.run, name="lorakit-http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_seconds
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
