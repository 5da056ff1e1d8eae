"""The hot paths' request and response: raw ASGI, without Starlette's objects.

Starlette's Request builds a headers object, a state wrapper and a body stream per request,
and its Response a header list and a background-task check; on the decision path that was
a measurable share of the CPU (py-spy under wrk). These read only what a handler asks for.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from retarget.errors import PayloadTooLarge

JSON = b"application/json"
GIF = b"image/gif"


class HotRequest:
    """What a hot handler reads: headers, query, cookies and body, parsed only when asked."""

    __slots__ = (
        "_cookies",
        "_headers",
        "_query",
        "body_limit",
        "receive",
        "received",
        "scope",
        "state",
    )

    def __init__(
        self, scope: Scope, receive: Receive, state: Any, body_limit: int = 64 * 1024
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.state = state  # the lifespan state, with attribute access
        self.body_limit = body_limit
        self._query: dict[str, str] | None = None
        self._headers: dict[bytes, bytes] | None = None
        self._cookies: dict[str, str] | None = None
        # perf_counter() once the body is in: the client's upload ends, the service's work starts.
        self.received: float | None = None

    @classmethod
    def of(cls, request: Request) -> HotRequest:
        """The same view of a Starlette request (the FastAPI routes' way in)."""
        return cls(request.scope, request.receive, request.state)

    def header(self, name: bytes) -> str | None:
        """The first value of a header; ``name`` in lower case, as ASGI gives them."""
        headers = self._headers
        if headers is None:  # built in C, reversed so that the first of repeated ones wins
            headers = self._headers = dict(reversed(self.scope["headers"]))
        value = headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; the last of repeated ones wins (as Starlette's ``.get``)."""
        if self._query is None:
            raw = self.scope["query_string"]
            self._query = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies, parsed as Starlette's ``request.cookies`` are."""
        if self._cookies is None:
            self._cookies = cookie_parser(self.header(b"cookie") or "")
        return self._cookies

    async def body(self) -> bytes:
        """The whole body; PayloadTooLarge (413) past the limit, declared or streamed."""
        declared = self.header(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.body_limit):
            raise PayloadTooLarge(
                f"request body is larger than {self.body_limit} bytes", field="body"
            )
        message = await self.receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await self.receive()
            body += message.get("body", b"")
            if len(body) > self.body_limit:
                raise PayloadTooLarge(
                    f"request body is larger than {self.body_limit} bytes", field="body"
                )
        self.received = time.perf_counter()
        return body


class HotResponse:
    """Status, body and headers as raw bytes; sent without Starlette's Response."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes,
        content_type: bytes,
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            *(headers or ()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})

    def starlette(self) -> Response:
        """For the FastAPI routes that declare the hot paths."""
        response = Response(self.body, status_code=self.status)
        response.raw_headers = self.headers
        return response
