"""Errors as values: the domain raises these, ``routes.errors`` turns them into HTTP once."""

from __future__ import annotations


class RetargetError(Exception):
    """Base of every error a client can cause; ``code`` is stable, ``message`` is for people."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(RetargetError):
    code = "validation_error"


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
