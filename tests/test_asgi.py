"""The hot paths' raw request: headers read as Starlette's ``Request.headers`` reads them."""

from __future__ import annotations

from starlette.requests import Request

from retarget.asgi import HotRequest


def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""}


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_a_repeated_header_reads_as_its_first_value_as_in_starlette() -> None:
    headers = [(b"authorization", b"Bearer first"), (b"authorization", b"Bearer second")]

    hot = HotRequest(scope(headers), receive, None).header(b"authorization")

    assert hot == "Bearer first"
    assert hot == Request(scope(headers)).headers["authorization"]


def test_a_missing_header_is_none_and_values_are_latin_1() -> None:
    request = HotRequest(scope([(b"user-agent", "Navigateur é".encode("latin-1"))]), receive, None)

    assert request.header(b"user-agent") == "Navigateur é"
    assert request.header(b"cookie") is None
