"""Run an ASGI app on a free loopback port in a background thread, or a server process, and stop it cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """``with ServerThread(app) as server: server.url``: uvicorn on 127.0.0.1, port chosen by the OS."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"test-server-{self.port}", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"test server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess:
    """A server in its own process (e.g. ``python -m llama_cpp.server``), ready when ``ready_path`` answers."""

    def __init__(self, args: list[str], port: int, ready_path: str, log: Path, env: dict[str, str] | None = None):
        self.url = f"http://127.0.0.1:{port}"
        self._args, self._ready, self._log_path, self._env = args, ready_path, log, env

    def start(self, timeout: float = 90) -> ServerProcess:
        self._log = open(self._log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(self._args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(self._env or {})})
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"{self._args[:3]} exited with {self.process.returncode}:\n"
                                   f"{self._log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + self._ready, timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self._args[:3]} did not answer {self._ready} in {timeout}s") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def llama_cpp_server(model_path: str, log: Path, *, alias: str = "smollm2", n_ctx: int = 2048,
                     threads: int = 1) -> ServerProcess:
    """llama-cpp-python's own OpenAI-compatible server, a third-party server as users run it."""
    port = free_port()
    args = [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--verbose", "False"]
    return ServerProcess(args, port, "/v1/models", log, env={"OMP_WAIT_POLICY": "passive"})
