"""The service's HTTP protocol (retarget.http_protocol) on real sockets: a response's head
leaves with its body in one write, and nothing a client waits for is held back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.http_protocol import HeadHoldingTransport
from retarget.settings import Settings
from tests.e2e.served import running

pytestmark = pytest.mark.e2e

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


async def arrived(peer: socket.socket) -> bytes:
    """What the peer can read once the event loop has had time to send (b"" if nothing)."""
    await asyncio.sleep(0.05)
    try:
        return peer.recv(65536)
    except BlockingIOError:
        return b""


@pytest.fixture
async def wire() -> AsyncIterator[tuple[HeadHoldingTransport, socket.socket]]:
    """A HeadHoldingTransport over a real asyncio transport, and the socket at its far end."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
    yield HeadHoldingTransport(transport), peer
    transport.close()
    peer.close()


async def test_a_response_head_waits_for_its_body_and_both_leave_in_one_write(
    wire: tuple[HeadHoldingTransport, socket.socket],
) -> None:
    transport, peer = wire
    transport.write(HEAD)
    assert await arrived(peer) == b""
    transport.write(b"{}")
    assert await arrived(peer) == HEAD + b"{}"  # one read: it was one write
    transport.write(b"more")  # nothing is held after the head
    assert await arrived(peer) == b"more"


async def test_an_interim_100_continue_and_a_whole_response_go_out_at_once(
    wire: tuple[HeadHoldingTransport, socket.socket],
) -> None:
    transport, peer = wire
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert await arrived(peer) == b"HTTP/1.1 100 Continue\r\n\r\n"
    whole = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad"
    transport.write(whole)
    assert await arrived(peer) == whole


async def test_a_held_head_goes_out_when_flushed_or_closed(
    wire: tuple[HeadHoldingTransport, socket.socket],
) -> None:
    transport, peer = wire
    transport.write(HEAD)
    transport.flush()
    assert await arrived(peer) == HEAD
    transport.write(HEAD)
    transport.close()
    assert await arrived(peer) == HEAD


async def exchange(port: int, request: bytes, until: bytes) -> bytes:
    """Send ``request`` raw and read until ``until`` has come (5 s at most)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        got = b""
        async with asyncio.timeout(5):
            while until not in got:
                chunk = await reader.read(65536)
                assert chunk, f"connection closed after {got!r}"
                got += chunk
        return got
    finally:
        writer.close()


def port_of(client: httpx.AsyncClient) -> int:
    port = client.base_url.port
    assert port is not None
    return port


async def test_a_head_request_gets_its_answer_though_no_body_is_written(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        got = await exchange(
            port_of(client), b"HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n", b"\r\n\r\n"
        )
    # FastAPI's GET routes refuse HEAD; what matters is that the answer arrives, bodiless.
    assert got.startswith(b"HTTP/1.1 405 ")
    assert got.endswith(b"\r\n\r\n")


async def test_a_client_expecting_100_continue_gets_it_before_it_sends_the_body(
    settings: Settings, clock: FrozenClock, redis: Redis, admin: dict[str, str]
) -> None:
    body = orjson.dumps({"name": "Shop", "domain": "shop.example.com"})
    head = (
        b"POST /v1/advertisers HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"authorization: " + admin["Authorization"].encode() + b"\r\n"
        b"expect: 100-continue\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    async with running(settings, clock) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(client))
        try:
            writer.write(head)
            async with asyncio.timeout(5):
                interim = await reader.readuntil(b"\r\n\r\n")
                assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
                writer.write(body)
                final = await reader.readuntil(b"\r\n\r\n")
        finally:
            writer.close()
    assert final.startswith(b"HTTP/1.1 201 ")


async def test_pipelined_requests_are_answered_in_order(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    requests = (
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        b"GET /no-such-page HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    async with running(settings, clock) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(client))
        writer.write(requests)
        async with asyncio.timeout(5):
            got = await reader.read()  # to the close after the second answer
        writer.close()
    first, second = got.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 ")
    assert first.endswith(b'{"status":"ok"}')
    assert second.startswith(b"404 ")
