"""Ads as browsers and video players take them: an iframe document, a tag script, VAST 4.2.

Pure functions, text in and text out. Advertisers give fields, never markup, and every value
is escaped for where it lands: HTML through ``html.escape(quote=True)``, VAST through the XML
serializer of an ElementTree, the tag script through JSON with ``<`` escaped. The script
carries only our own ids and URLs; advertiser text reaches the page only inside the iframe.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import escape
from urllib.parse import urlencode

from retarget.creatives import Banner, Native, Video
from retarget.decisions import Ad

VAST_VERSION = "4.2"
VAST_NAMESPACE = "http://www.iab.com/VAST"
AD_SYSTEM = "retarget"
# The iframe of a placement that names no size.
DEFAULT_FRAME_SIZE = (300, 250)
# Without allow-same-origin the ad document gets an opaque origin; a click may still take
# the top window to the landing page, or open a new one.
FRAME_SANDBOX = (
    "allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
)
# The route sends this with every ad document: no script runs, whatever the document holds.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

_STYLE = (
    "html,body{margin:0;padding:0;overflow:hidden;background:transparent}"
    "a{display:block;color:inherit;text-decoration:none}img{display:block;border:0}"
    "[hidden]{display:none}"
    ".card{display:flex;gap:8px;padding:8px;font:14px/1.3 system-ui,sans-serif;color:#222}"
    ".card img{width:96px;height:96px;object-fit:cover;flex:none}"
    ".card b{display:block;margin-bottom:4px}.card p{margin:0 0 6px}"
    ".cta{display:inline-block;padding:3px 8px;border-radius:3px;background:#1a73e8;color:#fff}"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def ad_html(ad: Ad | None) -> str:
    """A complete, script-free HTML document for an ad iframe; an empty body for no ad."""
    if ad is None:
        body = ""
    elif isinstance(ad.creative, Banner):
        f = ad.fields
        body = (
            f'<a href="{_e(ad.click_url)}" target="_top">'
            f'<img src="{_e(f["image_url"])}" alt="{_e(f["alt_text"])}"'
            f' width="{_e(f["width"])}" height="{_e(f["height"])}"></a>' + _beacon(ad)
        )
    elif isinstance(ad.creative, Native):
        f = ad.fields
        body = (
            f'<a class="card" href="{_e(ad.click_url)}" target="_top">'
            f'<img src="{_e(f["image_url"])}" alt="">'
            f"<div><b>{_e(f['title'])}</b><p>{_e(f['body'])}</p>"
            f'<span class="cta">{_e(f["call_to_action"])}</span></div></a>' + _beacon(ad)
        )
    else:
        raise ValueError(f"a {ad.creative.type} ad is not rendered as HTML")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Advertisement</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _beacon(ad: Ad) -> str:
    """The impression: a hidden 1x1 image, fetched when the document renders."""
    return f'<img src="{_e(ad.impression_url)}" alt="" width="1" height="1" hidden>'


def vast_xml(ad: Ad | None, *, ad_system_version: str | None = None) -> bytes:
    """A VAST 4.2 document: one InLine linear ad, or none (an empty VAST means no ad)."""
    root = ET.Element("VAST", version=VAST_VERSION, xmlns=VAST_NAMESPACE)
    if ad is not None:
        root.append(_vast_ad(ad, ad_system_version))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, short_empty_elements=False)


def _vast_ad(ad: Ad, ad_system_version: str | None) -> ET.Element:
    creative = ad.creative
    if not isinstance(creative, Video):
        raise ValueError(f"a {creative.type} ad has no VAST form")
    f = ad.fields
    # Element order is the XSD's: each type is a sequence, and a base type's elements
    # come before its extension's (hence TrackingEvents before Duration, and UniversalAdId
    # after Linear).
    vast_ad = ET.Element("Ad", id=ad.campaign_id, adType="video")
    inline = ET.SubElement(vast_ad, "InLine")
    ad_system = ET.SubElement(inline, "AdSystem")
    ad_system.text = AD_SYSTEM
    if ad_system_version:
        ad_system.set("version", ad_system_version)
    ET.SubElement(inline, "Impression", id=AD_SYSTEM).text = ad.impression_url
    ET.SubElement(inline, "AdServingId").text = ad.decision_id
    ET.SubElement(inline, "AdTitle").text = creative.name or ad.campaign_id
    creatives = ET.SubElement(inline, "Creatives")
    vast_creative = ET.SubElement(creatives, "Creative", id=creative.id, sequence="1")
    linear = ET.SubElement(vast_creative, "Linear")
    # Only events that a URL of ours counts: the impression URL counts once per decision,
    # so a player that pings it for both Impression and start still counts one impression.
    events = ET.SubElement(linear, "TrackingEvents")
    ET.SubElement(events, "Tracking", event="start").text = ad.impression_url
    ET.SubElement(linear, "Duration").text = _duration(f["duration_seconds"])
    media_files = ET.SubElement(linear, "MediaFiles")
    ET.SubElement(
        media_files,
        "MediaFile",
        delivery="streaming" if f["mime_type"] == "application/x-mpegURL" else "progressive",
        type=f["mime_type"],
        width=str(f["width"]),
        height=str(f["height"]),
    ).text = f["media_url"]
    clicks = ET.SubElement(linear, "VideoClicks")
    ET.SubElement(clicks, "ClickThrough", id=AD_SYSTEM).text = ad.click_url
    ET.SubElement(vast_creative, "UniversalAdId", idRegistry=AD_SYSTEM).text = creative.id
    ET.SubElement(inline, "Expires").text = str(ad.ttl_seconds)
    return vast_ad


def _duration(seconds: int) -> str:
    """``75`` -> ``00:01:15`` (VAST's HH:MM:SS)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def ad_document_url(base_url: str, publisher_id: str, placement_id: str, **extra: str) -> str:
    """Where a placement's ad iframe points: ``/v1/ad?pub=..&placement=..``."""
    query = urlencode({"pub": publisher_id, "placement": placement_id, **extra})
    return f"{base_url}/v1/ad?{query}"


def ad_js(src: str, size: tuple[int, int] | None, container: str | None) -> str:
    """The ad tag: a script that puts an iframe of ``src`` into the element with id
    ``container``, or right after its own script element."""
    width, height = size or DEFAULT_FRAME_SIZE
    config = _js_literal(
        {
            "src": src,
            "width": str(width),
            "height": str(height),
            "container": container,
            "sandbox": FRAME_SANDBOX,
        }
    )
    return f"""(function () {{
  "use strict";
  var c = {config};
  var script = document.currentScript;
  var frame = document.createElement("iframe");
  frame.setAttribute("src", c.src);
  frame.setAttribute("width", c.width);
  frame.setAttribute("height", c.height);
  frame.setAttribute("title", "Advertisement");
  frame.setAttribute("scrolling", "no");
  frame.setAttribute("frameborder", "0");
  frame.setAttribute("sandbox", c.sandbox);
  frame.style.border = "0";
  var slot = c.container ? document.getElementById(c.container) : null;
  if (slot) {{
    while (slot.firstChild) slot.removeChild(slot.firstChild);
    slot.appendChild(frame);
  }} else if (script && script.parentNode) {{
    script.parentNode.insertBefore(frame, script.nextSibling);
  }}
}})();
"""


def _js_literal(value: object) -> str:
    """JSON that is also safe inside an HTML <script>: no ``</``, ``<!--`` or ``]]>``."""
    text = json.dumps(value, ensure_ascii=True)  # ensure_ascii: U+2028/2029 escaped too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
