"""Server-rendered pages (the demo and the dashboard): Jinja2 templates, autoescaped.

Autoescaping is on for every template, so a value reaches HTML escaped unless a template
says otherwise (none does); data for scripts goes in ``<script type="application/json">``
through ``json_for_script``, which no value can break out of. Pages load scripts and styles
from our own origin only, which the CSP below enforces.
"""

from __future__ import annotations

import json
from typing import Any

import jinja2
from markupsafe import Markup

# No inline script or style; our own origin only; never framed by another site.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def json_for_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``, so
    neither ``</script>`` nor ``<!--`` can end the block early."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped for its context just above)


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("retarget", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["json_for_script"] = json_for_script


def render(template: str, **context: Any) -> str:
    """The named template of ``templates/`` with ``context``, every value escaped."""
    return _environment.get_template(template).render(**context)
