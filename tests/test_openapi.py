"""The API document: what /docs shows integrators."""

from __future__ import annotations

from typing import Any

import httpx


def _has_example(schema: dict[str, Any] | None, components: dict[str, Any]) -> bool:
    if not schema:
        return False
    if "examples" in schema or "example" in schema:
        return True
    if "$ref" in schema:
        return _has_example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    return any(
        _has_example(s, components) for s in schema.get("anyOf", []) + schema.get("oneOf", [])
    )


async def test_every_operation_with_a_body_documents_an_example(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    undocumented = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not (
                body.get("examples") or _has_example(body.get("schema"), components)
            ):
                undocumented.append(f"{method.upper()} {path}")

    assert undocumented == []


async def test_the_hot_paths_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    for path in ("/v1/decisions", "/px/{pixel_id}.gif", "/t/imp/{token}", "/t/click/{token}"):
        assert path in paths


async def test_the_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()
