"""Serving the explorer: a free port, uvicorn on localhost, the browser opened on the page."""
from __future__ import annotations

import errno
import socket
import threading
import time
import webbrowser

from ..errors import CnnlabError

DEFAULT_PORT = 8231
PORTS_TRIED = 50


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise CnnlabError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return True


def choose_port(host: str, port: int | None) -> int:
    """``port`` if given (an error if it is taken), else 8231 or the next free port after it."""
    if port is not None:
        if not 1 <= port <= 65535:
            raise CnnlabError(f"--port must lie between 1 and 65535, got {port}")
        if not _can_bind(host, port):
            raise CnnlabError(f"port {port} on {host} is in use; choose another --port, or leave it out to take "
                              "the next free one")
        return port
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + PORTS_TRIED):
        if _can_bind(host, candidate):
            return candidate
    raise CnnlabError(f"ports {DEFAULT_PORT}-{DEFAULT_PORT + PORTS_TRIED - 1} are all in use; pass --port")


def serve(host: str = "127.0.0.1", port: int | None = None, *, runs: str = "runs", data: str | None = None,
          models: str | None = None, open_browser: bool = True, announce=print) -> None:
    """Run the explorer until interrupted; ``announce`` receives the lines for the user."""
    try:
        import uvicorn

        from .app import create_app
    except ImportError as error:
        raise CnnlabError(f"cnnlab explore needs FastAPI and uvicorn ({error.name} is missing): "
                          "pip install 'cnnlab[explore]'") from None
    app = create_app(runs=runs, data=data, models=models)
    port = choose_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: listening on {host}, so other machines on the network can reach the explorer")
    # The zoo table (params and MACs of every model) is traced once and cached on disk; doing it
    # while the user reads the page keeps the first visit to the architectures panel quick.
    threading.Thread(target=app.state.zoo.rows, daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    announce(f"cnnlab explorer on {url} (API documented at {url}docs); Ctrl+C stops it")
    if open_browser:
        def open_when_up() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=open_when_up, daemon=True).start()
    server.run()


class ServerThread:
    """The explorer served from a background thread (for tests, screenshots and benchmarks):
    ``with ServerThread(app) as url: ...`` starts uvicorn on a free port and stops it after."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None):
        import uvicorn

        self.port = port or _free_port(host)
        self.url = f"http://{host}:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise CnnlabError(f"the explorer did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port(host: str) -> int:
    """A port the system reports free now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
