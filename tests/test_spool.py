"""The spool on a real disk: group commit, the size bound, torn lines, dead workers' files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from retarget.audiences import Membership
from retarget.events import Event, EventType
from retarget.spool import Spool, Spooled, SpoolFull, decode, encode
from retarget.store.users import Recording
from retarget.users import Namespace, UserRef

NOW = 1_800_000_000.0


def item(order_id: str | None = "o-1", uid: str = "u1") -> Spooled:
    event = Event("adv-1", EventType.PURCHASE, NOW - 5, sku="B-1", value=9.5, dedup_id=order_id)
    user = UserRef(Namespace.COOKIE, uid)
    return Spooled(Recording(user, event, [Membership("aud-1", int(NOW), int(NOW) + 86400)]), NOW)


def everything(spool: Spool) -> list[Spooled | None]:
    return [record for f in spool.to_replay for _, record in spool.records(f, 10_000)]


def test_a_record_reads_back_as_it_was_written() -> None:
    original = item(order_id=None)

    assert decode(encode(original)) == original


async def test_concurrent_appends_share_fsyncs_and_all_land_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000_000)

    await asyncio.gather(*(spool.append([item(f"o-{i}")]) for i in range(200)))
    await spool.rotate()

    assert spool.commits < 200
    assert sorted(r.recording.event.dedup_id for r in everything(spool) if r) == sorted(
        f"o-{i}" for i in range(200)
    )


async def test_a_full_spool_refuses_the_append_and_writes_nothing(tmp_path: Path) -> None:
    one = len(encode(item()))
    spool = Spool(tmp_path, max_bytes=one * 2)
    await spool.append([item("o-1"), item("o-2")])

    with pytest.raises(SpoolFull):
        await spool.append([item("o-3")])

    await spool.rotate()
    assert [r.recording.event.dedup_id for r in everything(spool) if r] == ["o-1", "o-2"]


async def test_a_live_workers_file_cannot_be_claimed_by_another(tmp_path: Path) -> None:
    alive = Spool(tmp_path, max_bytes=1_000_000)
    await alive.append([item()])
    other = Spool(tmp_path, max_bytes=1_000_000)

    assert await other.claim_orphans() == 0
    assert other.to_replay == []


async def test_a_file_still_being_created_under_its_dot_name_is_not_claimed(
    tmp_path: Path,
) -> None:
    (tmp_path / ".12-ab12cd34-000001.spool").write_bytes(b"")  # created, not yet locked
    other = Spool(tmp_path, max_bytes=1_000_000)

    assert await other.claim_orphans() == 0
    assert other.to_replay == []


async def test_the_file_of_a_worker_that_is_gone_is_claimed_once(tmp_path: Path) -> None:
    dead = Spool(tmp_path, max_bytes=1_000_000)
    await dead.append([item("o-1"), item("o-2")])
    dead.close()  # what the kernel does to the locks of a killed process
    first, second = Spool(tmp_path, max_bytes=1_000_000), Spool(tmp_path, max_bytes=1_000_000)

    claimed = await first.claim_orphans()

    assert claimed > 0
    assert first.size == claimed
    assert await second.claim_orphans() == 0
    assert [r.recording.event.dedup_id for r in everything(first) if r] == ["o-1", "o-2"]


async def test_a_line_torn_by_a_crash_is_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    dead = Spool(tmp_path, max_bytes=1_000_000)
    await dead.append([item("o-1")])
    dead.close()
    (name,) = [n for n in os.listdir(tmp_path) if n.endswith(".spool")]
    path = tmp_path / name
    with path.open("ab") as torn:
        torn.write(encode(item("o-2"))[:30])
    survivor = Spool(tmp_path, max_bytes=1_000_000)
    await survivor.claim_orphans()

    records = everything(survivor)

    assert [r.recording.event.dedup_id if r else None for r in records] == ["o-1", None]


async def test_a_fully_replayed_file_is_removed_and_the_spool_is_empty(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1_000_000)
    await spool.append([item("o-1"), item("o-2")])
    await spool.rotate()
    (spool_file,) = spool.to_replay
    end = [offset for offset, _ in spool.records(spool_file, 10)][-1]

    await spool.replayed(spool_file, end)

    assert spool.is_empty()
    assert [n for n in os.listdir(tmp_path) if n.endswith(".spool")] == []
