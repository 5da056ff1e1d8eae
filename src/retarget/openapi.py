"""The error answers of the API document: every status an operation can give, with our body.

FastAPI documents what a route declares, plus a 422 in its own validation-error shape that
we never send. The service answers more than routes declare, always with one body
(``routes/errors.py``): 401/403 for a missing or wrong key, 404 for an unknown id in the
path, 400/413/422 for a malformed, oversized or invalid request, 429 from the rate limits,
503 when Redis is down. This declares each of them where it can happen, so integrators (and
the schemathesis fuzz in the tests) can rely on the document.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "description": "Stable, e.g. validation_error."},
                "message": {"type": "string", "description": "For people."},
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The request field at fault (dotted path), if one is.",
                },
            },
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "Missing or unknown key or signature",
    403: "The key may not do this",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "The body is too large",
    422: "A malformed or invalid parameter or field, named in `error.field`",
    429: "Over a rate limit: retry after `Retry-After` seconds",
    503: "Storage unavailable: retry later",
}
# Beacons a browser loads as an image: their errors are GIFs, the reason in X-Retarget-Error.
_IMAGE_ERRORS = ("/px/",)
_BEARER_PATHS = ("/v1/decisions",)  # checks its key itself, without FastAPI's security scheme


def _statuses(path: str, operation: dict[str, Any]) -> set[int]:
    if not path.startswith(("/v1/", "/px/", "/t/")):
        return set()
    statuses = {503} if path.startswith(("/v1/", "/px/")) else set()
    if path.startswith(("/v1/", "/px/")):
        statuses.add(429)
    if operation.get("security") or path in _BEARER_PATHS:
        statuses |= {401, 403}
    if "{" in path or path in _BEARER_PATHS:
        statuses.add(404)
    if operation.get("parameters") or operation.get("requestBody") or "{" in path:
        statuses.add(422)
    if operation.get("requestBody"):
        statuses |= {400, 413}
    return statuses


def declare_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to every operation of ``document`` (in place); return it."""
    document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in document.get("paths", {}).items():
        image = path.startswith(_IMAGE_ERRORS)
        content = {"image/gif": {}} if image else {"application/json": {"schema": _ERROR_REF}}
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and s >= "400"}
            for status in _statuses(path, operation) | declared:
                response = responses.setdefault(str(status), {})
                response.setdefault("description", DESCRIPTIONS.get(status, "Error"))
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if not response.get("content") or schema == {"$ref": _FASTAPI_VALIDATION}:
                    response["content"] = content
    schemas = document["components"]["schemas"]
    if _FASTAPI_VALIDATION not in str(document["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document
