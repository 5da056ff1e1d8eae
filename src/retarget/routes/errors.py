"""The one place errors become HTTP: every 4xx/5xx body is ``{"error": {code, message, field}}``."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from retarget import errors

log = logging.getLogger("retarget")

STATUS: dict[type[errors.RetargetError], int] = {
    errors.InvalidInput: 422,
    errors.InvalidJson: 400,
    errors.NotFound: 404,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.Unavailable: 503,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "field": field}})


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    # nosniff: messages may quote the request (a path, an id); no browser may read them as HTML.
    return Response(
        error_body(code, message, field),
        status_code=status,
        media_type="application/json",
        headers={**(headers or {}), "X-Content-Type-Options": "nosniff"},
    )


def domain_error_response(exc: errors.RetargetError) -> Response:
    return error_response(STATUS.get(type(exc), 400), exc.code, exc.message, exc.field)


def storage_error_response() -> Response:
    return error_response(503, "unavailable", "storage is unavailable, retry later")


def internal_error_response() -> Response:
    return error_response(500, "internal", "internal error")


def http_error_response(exc: HTTPException, method: str, path: str) -> Response:
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such resource: {method} {path}"
    field = "body" if exc.status_code == 413 else None
    return error_response(exc.status_code, code, message, field, headers=exc.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.RetargetError)
    async def _domain_error(request: Request, exc: errors.RetargetError) -> Response:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return domain_error_response(errors.invalid_input(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return http_error_response(exc, request.method, request.url.path)

    @app.exception_handler(RedisError)
    async def _storage_down(request: Request, exc: RedisError) -> Response:
        log.warning("redis error on %s %s: %s", request.method, request.url.path, exc)
        return storage_error_response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.scope.get("route"))
        return internal_error_response()
