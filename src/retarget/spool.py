"""The durable spool: events acknowledged while Redis could not take them, on local disk.

Each worker appends to its own file under ``<data_dir>/spool`` and holds an exclusive
``flock`` on every file it owns for as long as it lives. Appends are group-committed: the
records of every request that arrives while a write + fsync runs go out together in the
next one, so concurrent requests share one fsync. An append returns only after its fsync,
which is what makes "acknowledged" mean "on disk".

A file whose lock can be taken belongs to no live worker (the kernel drops a dead process's
locks, whatever its pid became): any worker claims it and replays it. Files are created
under a dot-name, locked, then renamed into place, so no other worker can claim a fresh one.

Records are JSON lines. A line torn by a crash in the middle of a write never had its fsync
return, so it was never acknowledged: the reader skips a line it cannot parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from retarget.audiences import Membership
from retarget.events import Event, EventType
from retarget.store.users import Recording
from retarget.users import Namespace, UserRef

log = logging.getLogger("retarget")

SUFFIX = ".spool"


class SpoolFull(Exception):
    """The spool has no room for these records: they are not acknowledged."""


@dataclass(frozen=True, slots=True)
class Spooled:
    """One recording with the time it was acknowledged at (the replay uses that time)."""

    recording: Recording
    now: float


def encode(item: Spooled) -> bytes:
    """One JSON line."""
    recording, event = item.recording, item.recording.event
    return (
        orjson.dumps(
            {
                "now": item.now,
                "ns": recording.user.namespace.value,
                "uid": recording.user.id,
                "adv": event.advertiser_id,
                "type": event.type.value,
                "ts": event.ts,
                "sku": event.sku,
                "pn": event.product,
                "cat": event.category,
                "val": event.value,
                "cur": event.currency,
                "id": event.dedup_id,
                "m": [[m.audience_id, m.since, m.expires] for m in recording.memberships],
            }
        )
        + b"\n"
    )


def decode(line: bytes) -> Spooled:
    raw: dict[str, Any] = orjson.loads(line)
    event = Event(
        advertiser_id=raw["adv"],
        type=EventType(raw["type"]),
        ts=raw["ts"],
        sku=raw["sku"],
        product=raw["pn"],
        category=raw["cat"],
        value=raw["val"],
        currency=raw["cur"],
        dedup_id=raw["id"],
    )
    user = UserRef(Namespace(raw["ns"]), raw["uid"])
    memberships = [Membership(a, since, expires) for a, since, expires in raw["m"]]
    return Spooled(Recording(user, event, memberships), raw["now"])


@dataclass
class SpoolFile:
    """A file this worker holds the lock of; ``done`` bytes of it are already replayed."""

    path: Path
    fd: int
    done: int = 0


@dataclass
class _Pending:
    data: bytes
    written: asyncio.Future[None] = field(repr=False)


class Spool:
    """This worker's spool: appends (group-committed fsync), and the files to replay."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self._max_bytes = max_bytes
        self._name = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._serial = itertools.count()
        self._active: SpoolFile | None = None
        self.to_replay: list[SpoolFile] = []  # oldest first; claimed or rotated files
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._size = 0  # bytes appended and not yet replayed, in every file we hold
        self.commits = 0  # write + fsync calls: fewer than appends under concurrency

    @property
    def size(self) -> int:
        return self._size

    def is_empty(self) -> bool:
        return self._size == 0 and not self._pending

    async def append(self, items: list[Spooled]) -> None:
        """Write and fsync; return once on disk. SpoolFull when over the size bound,
        OSError when the disk fails: in both cases nothing may be acknowledged."""
        data = b"".join(encode(item) for item in items)
        if self._size + len(data) > self._max_bytes:
            raise SpoolFull(f"spool holds {self._size} bytes, limit {self._max_bytes}")
        self._size += len(data)  # reserved now, so concurrent appends cannot overshoot
        written = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        # Shielded: a client that leaves does not unwrite its record (it is replayed).
        await asyncio.shield(written)

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            data = b"".join(p.data for p in batch)
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                log.error("spool write failed: %s", exc)
                self._size -= len(data)
                for p in batch:
                    if not p.written.done():
                        p.written.set_exception(exc)
                continue
            for p in batch:
                if not p.written.done():
                    p.written.set_result(None)

    def _write(self, data: bytes) -> None:
        if self._active is None:
            self._active = self._create()
        fd = self._active.fd
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        self.commits += 1

    def _create(self) -> SpoolFile:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{self._name}-{next(self._serial):06d}{SUFFIX}"
        hidden = self.directory / f".{name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = self.directory / name
        os.rename(hidden, path)
        _fsync_directory(self.directory)
        return SpoolFile(path, fd)

    async def rotate(self) -> None:
        """Hand the file being appended to over to replay; later appends start a new one.
        Waits for the writer so no append lands in a file while it is replayed."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._active is not None:
            self.to_replay.append(self._active)
            self._active = None

    async def claim_orphans(self) -> int:
        """Take over the files of workers that are gone; return how many bytes they hold."""
        held = {f.path.name for f in self.to_replay}
        if self._active is not None:
            held.add(self._active.path.name)
        claimed = await asyncio.to_thread(self._lock_orphans, held)
        for spool_file, size in claimed:
            log.info("claimed spool file %s (%d bytes)", spool_file.path.name, size)
            self.to_replay.append(spool_file)
            self._size += size
        return sum(size for _, size in claimed)

    def _lock_orphans(self, held: set[str]) -> list[tuple[SpoolFile, int]]:
        if not self.directory.is_dir():
            return []
        claimed = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}"), key=_mtime):
            # pathlib's glob matches dot-names too: one is a file a worker is still creating,
            # not yet locked (taking it would make that worker's append fail).
            if path.name in held or path.name.startswith("."):
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # replayed and removed by another worker meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live worker's
            if not path.exists():  # removed between our open and our lock
                os.close(fd)
                continue
            claimed.append((SpoolFile(path, fd), os.fstat(fd).st_size))
        return claimed

    async def read(self, spool_file: SpoolFile, limit: int) -> list[tuple[int, Spooled | None]]:
        """``records`` off the event loop."""
        return await asyncio.to_thread(lambda: list(self.records(spool_file, limit)))

    def records(self, spool_file: SpoolFile, limit: int) -> Iterator[tuple[int, Spooled | None]]:
        """Up to ``limit`` records after ``done``: (end offset, record or None if torn)."""
        with open(spool_file.path, "rb") as reader:
            reader.seek(spool_file.done)
            offset = spool_file.done
            for line in itertools.islice(reader, limit):
                offset += len(line)
                if not line.endswith(b"\n"):
                    yield offset, None  # torn by a crash mid-write: never acknowledged
                    continue
                try:
                    yield offset, decode(line)
                except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                    log.error("unreadable spool record in %s", spool_file.path.name)
                    yield offset, None

    async def replayed(self, spool_file: SpoolFile, offset: int) -> None:
        """Everything up to ``offset`` is in Redis; a fully replayed file is removed."""
        self._size -= offset - spool_file.done
        spool_file.done = offset
        if offset >= os.fstat(spool_file.fd).st_size:
            self.to_replay.remove(spool_file)
            await asyncio.to_thread(self._remove, spool_file)

    def _remove(self, spool_file: SpoolFile) -> None:
        spool_file.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)
        os.close(spool_file.fd)  # releases the lock last

    def close(self) -> None:
        """Release every lock; files left hold records the next worker will replay."""
        for spool_file in [*self.to_replay, *([self._active] if self._active else [])]:
            with contextlib.suppress(OSError):
                os.close(spool_file.fd)
        self.to_replay, self._active = [], None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _fsync_directory(directory: Path) -> None:
    """Make a created, renamed or removed name durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
