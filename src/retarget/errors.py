"""Errors as values: the domain raises these, ``routes.errors`` turns them into HTTP once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RetargetError(Exception):
    """Base of every error a client can cause; ``code`` is stable, ``message`` is for people."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(RetargetError):
    code = "validation_error"


class InvalidJson(RetargetError):
    code = "invalid_json"


class NotFound(RetargetError):
    code = "not_found"


class Unauthorized(RetargetError):
    code = "unauthorized"


class Forbidden(RetargetError):
    code = "forbidden"


class Conflict(RetargetError):
    code = "conflict"


class PayloadTooLarge(RetargetError):
    code = "payload_too_large"


class Unavailable(RetargetError):
    """Our dependency (Redis) is down: not the client's fault, and retryable."""

    code = "unavailable"


def field_name(loc: Sequence[Any]) -> str | None:
    """``("body", "user", "id")`` -> ``"user.id"``; ``("query", "sku")`` -> ``"sku"``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    # pydantic adds the tag of a discriminated union ("banner") as a path element; keep it,
    # it tells the client which variant was checked.
    return ".".join(parts) if parts else (str(loc[0]) if loc else None)


def pydantic_message(error: Any) -> str:
    """pydantic's message for one error, without its "Value error, " prefix. An unknown field
    reads the same whether the body is a model or a pydantic dataclass (which would say
    "Unexpected keyword argument")."""
    if error.get("type") == "unexpected_keyword_argument":
        return "Extra inputs are not permitted"
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def error_field(error: Any) -> str | None:
    """The field a pydantic error is about; for a union with no or an unknown tag, the tag."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") in ("union_tag_not_found", "union_tag_invalid"):
        loc += (str(error.get("ctx", {}).get("discriminator", "type")).strip("'"),)
    return field_name(loc)


def invalid_input(exc: Any) -> RetargetError:
    """A pydantic ValidationError as the client's error: its first problem, naming the field
    (InvalidJson when the body is not JSON at all)."""
    error = exc.errors()[0]
    if error.get("type") == "json_invalid":
        return InvalidJson("request body is not valid JSON", field="body")
    field = error_field(error) or "body"
    return InvalidInput(f"{field}: {pydantic_message(error)}", field=field)
