"""Worker processes on one port, each accepting on a listening socket of its own.

uvicorn's ``--workers`` shares one listening socket: every idle worker wakes for a new
connection, and the first to accept keeps it for the connection's life. A burst of connections
(a load balancer's or a publisher's keep-alive pool, opened at once) then lands on whichever
worker woke first: under wrk's 64 connections, two workers split them anywhere from 32/32 to
64/0, one worker serving every request while the other idled, and a run's tail latency
depended on that draw. Here each worker listens on a socket of its own, all bound to the port
with ``SO_REUSEPORT``, and Linux spreads new connections over them by a hash of the client's
address and port. The parent keeps every socket open, so connections queued for a worker that
died wait for its replacement rather than being reset.

The rest is what uvicorn's supervisor does: SIGTERM or SIGINT stops the workers (each drains
its requests for up to ``timeout_graceful_shutdown`` seconds), and a worker that exits by
itself is replaced. ``python -m retarget.workers APP --port P --workers N`` serves any ASGI
app this way with the service's uvicorn settings (the benchmark's floor runs like that).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
from collections.abc import Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("retarget")

# What `retarget serve` and the benchmark's floor share: uvloop, and uvicorn's httptools
# protocol writing each response's head and body at once (http_protocol).
SERVER_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "retarget.http_protocol:HttpToolsProtocol",
    "server_header": False,
    # uvicorn would otherwise take X-Forwarded-For from any local peer as the client
    # address; the client IP is client_ip's alone, from RETARGET_TRUSTED_PROXIES.
    "proxy_headers": False,
}
REUSE_PORT = sys.platform == "linux"  # elsewhere SO_REUSEPORT binds but does not balance
_spawn = multiprocessing.get_context("spawn")


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on (host, port) that other sockets may share with SO_REUSEPORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _worker(config: uvicorn.Config, sock: socket.socket) -> None:
    config.configure_logging()  # the parent's logging is not inherited by a spawned process
    # uvicorn re-raises the stop signal once drained: Ctrl-C (sent to the whole process group)
    # then ends in a KeyboardInterrupt, and the parent is stopping us anyway.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Workers:
    """``count`` processes serving ``config``'s app, one SO_REUSEPORT socket each."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self._config = config
        self._sockets = [
            listening_socket(config.host, config.port, config.backlog) for _ in range(count)
        ]
        self._stopping = False

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = _spawn.Process(target=_worker, args=(self._config, sock))
        process.start()
        return process

    def _stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; then stop every worker and wait for them."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        processes = [self._start(sock) for sock in self._sockets]
        failed = False
        while not self._stopping:
            wait([process.sentinel for process in processes], timeout=0.5)
            for slot, process in enumerate(processes):
                if process.exitcode is None or self._stopping:
                    continue
                if process.exitcode == STARTUP_FAILURE:  # the app or its settings are broken:
                    self._stopping = failed = True  # every replacement would fail alike
                    log.error("worker failed to start: stopping", extra={"pid": process.pid})
                    break
                log.error(
                    "worker exited: starting another",
                    extra={"pid": process.pid, "exitcode": process.exitcode},
                )
                processes[slot] = self._start(self._sockets[slot])
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: uvicorn drains, then the worker exits
        for process in processes:
            process.join()
        for sock in self._sockets:
            sock.close()
        if failed:
            sys.exit(STARTUP_FAILURE)


def run(app: Any, workers: int, *, factory: bool = False, **settings: Any) -> None:
    """Serve ``app`` (with several workers: its ``module:attribute`` name) with uvicorn and
    ``SERVER_SETTINGS``; ``settings`` are more of uvicorn's."""
    settings = {**SERVER_SETTINGS, **settings}
    if workers > 1 and REUSE_PORT:
        Workers(uvicorn.Config(app, factory=factory, **settings), workers).run()
    else:
        uvicorn.run(app, factory=factory, workers=workers, **settings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an ASGI app as `retarget serve` does.")
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--factory", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.app, args.workers, factory=args.factory, host=args.host, port=args.port,
        access_log=False, log_level="warning",
    )  # fmt: skip


if __name__ == "__main__":
    main()
