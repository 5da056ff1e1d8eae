"""uvicorn's httptools protocol, sending a response's head with its body in one write.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body at ``http.response.body``: two ``write`` system calls
and two TCP segments for every response, where the client needed one, and on a loopback
two wake-ups of the client for one answer. Here the head waits for the response's next
write, its end, or the connection's close, whichever comes first; everything else, and its
order, is as uvicorn sends it.

Measured under wrk at 6,000 decisions/s with two workers (docs/benchmarks.md, ninth
session): three write calls per decision (its Redis call, the head, the body) became two,
and the p99 went from 7.3 to 5.1 ms (the floor's, from 5.0 to 3.7).

The service (``retarget serve``) and the bench's floor both run with it
(``workers.SERVER_SETTINGS``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http import httptools_impl


def _is_final_head(data: object) -> bool:
    """A final response's status line and headers, written alone: ``HTTP/1.1 2xx ...``
    ending in the blank line. Not an interim ``100 Continue``, which the client waits for
    before it sends the body, and not a whole response (uvicorn's own 400s)."""
    return (
        isinstance(data, bytes)
        and data.startswith(b"HTTP/1.1 ")
        and data[9:10] != b"1"
        and data.endswith(b"\r\n\r\n")
    )


class HeadHoldingTransport:
    """The connection's transport, except that a response's head is held until the next
    write (sent with it), ``flush`` or ``close``."""

    __slots__ = ("_held", "_transport", "get_extra_info", "is_closing")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""
        # The methods uvicorn calls most (per response, per connection), bound once; the
        # rest go through __getattr__.
        self.is_closing = transport.is_closing
        self.get_extra_info = transport.get_extra_info

    def write(self, data: bytes) -> None:
        held = self._held
        if held:
            self._held = b""
            self._transport.write(held + data)
        elif _is_final_head(data):
            self._held = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held:
            self._held = b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``HeadHoldingTransport``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(HeadHoldingTransport(transport))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        # A response with no body write (HEAD) still gets its head out.
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
