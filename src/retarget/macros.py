"""Creative text macros filled from the user's last purchase: ``{product}``, ``{category}``.

``{product|our new arrivals}`` gives a fallback for users whose last purchase lacks it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

MACROS = ("product", "category")
_MACRO = re.compile(r"\{([a-z_]+)(?:\|([^{}]{0,100}))?\}")
_STRAY_BRACE = re.compile(r"[{}]")


def check(text: str) -> str:
    """Raise ValueError for an unknown macro or a stray brace; return ``text`` unchanged."""
    for match in _MACRO.finditer(text):
        if match.group(1) not in MACROS:
            raise ValueError(f"unknown macro {{{match.group(1)}}}; known: product, category")
    if _STRAY_BRACE.search(_MACRO.sub("", text)):
        raise ValueError("braces are only for macros such as {product|fallback}")
    return text


def fill(text: str, values: Mapping[str, str | None]) -> str:
    """Replace each macro by its value, else its fallback, else nothing (plain text out)."""
    if "{" not in text:
        return text
    filled: list[str] = []
    for part in _template(text):
        filled.append(part if isinstance(part, str) else values.get(part[0]) or part[1])
    return "".join(filled)


@functools.lru_cache(maxsize=4096)  # a creative's texts, filled again for every ad served
def _template(text: str) -> tuple[str | tuple[str, str], ...]:
    """``text`` split once into literal parts and (macro, fallback) pairs; an unknown macro
    stays literal text."""
    parts: list[str | tuple[str, str]] = []
    start = 0
    for match in _MACRO.finditer(text):
        name = match.group(1)
        if name not in MACROS:
            continue
        parts.append(text[start : match.start()])
        parts.append((name, match.group(2) or ""))
        start = match.end()
    parts.append(text[start:])
    return tuple(part for part in parts if part != "")
