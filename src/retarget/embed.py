"""Ready-to-paste pixel embed code for an advertiser's order-confirmation page."""

from __future__ import annotations

from html import escape

import orjson


def pixel_embed(base_url: str, pixel_id: str) -> dict[str, str]:
    """An ``<img>`` tag and an async ``<script>`` tag; placeholders in capitals are the shop's.

    Everything interpolated is escaped for its context (HTML attribute, JS string), even
    though it is our own data: the base URL may come from a request's Host header.
    """
    src = f"{base_url}/px/{pixel_id}.gif"
    img = (
        f'<img src="{escape(src)}?ev=purchase&amp;oid=ORDER_ID&amp;val=ORDER_VALUE'
        f'&amp;cur=EUR&amp;sku=SKU&amp;cat=CATEGORY" width="1" height="1" alt="" '
        'style="position:absolute;left:-9999px" referrerpolicy="no-referrer-when-downgrade">'
    )
    # orjson output is a valid JS string literal; "</" is split so it cannot close the tag.
    js_src = orjson.dumps(src).decode().replace("</", "<\\/")
    script = (
        "<script async>(function(o){var q=[];for(var k in o)"
        'q.push(k+"="+encodeURIComponent(o[k]));'
        f'(new Image()).src={js_src}+"?"+q.join("&");}})'
        '({ev:"purchase",oid:"ORDER_ID",val:"ORDER_VALUE",cur:"EUR",sku:"SKU",cat:"CATEGORY"});'
        "</script>"
    )
    return {"pixel_id": pixel_id, "pixel_url": src, "img": img, "script": script}
