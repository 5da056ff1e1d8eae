"""Creative text macros filled from the user's last purchase: ``{product}``, ``{category}``.

``{product|our new arrivals}`` gives a fallback for users whose last purchase lacks it.
"""

from __future__ import annotations

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
    return _MACRO.sub(
        lambda m: (
            (values.get(m.group(1)) or m.group(2) or "") if m.group(1) in MACROS else m.group(0)
        ),
        text,
    )
