"""Rendering ads for browsers and video players: escaped HTML, valid VAST, a safe tag script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from retarget import render
from retarget.creatives import Banner, Native, Video
from retarget.decisions import Ad

# In CI the repository is cloned with shared/ beside it.
VAST_XSD = Path(__file__).resolve().parents[1] / ".." / "shared" / "standards" / "vast"
NS = {"v": "http://www.iab.com/VAST"}
XSS = "<script>alert(1)</script>\"'&"
IMPRESSION = "https://ads.example/t/imp/abc.def"
CLICK = "https://ads.example/t/click/abc.def"


@cache
def vast_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(VAST_XSD / "vast_4.2.xsd"))


def make_ad(creative: Banner | Native | Video, fields: dict[str, Any], **overrides: Any) -> Ad:
    values: dict[str, Any] = {
        "decision_id": "d-123",
        "placement_id": "home-top",
        "advertiser_id": "adv_1",
        "campaign_id": "cmp_1",
        "creative": creative,
        "fields": fields,
        "impression_url": IMPRESSION,
        "click_url": CLICK,
        "ttl_seconds": 300,
        **overrides,
    }
    return Ad(**values)


def banner_ad(alt_text: str = "Still thinking about Dune?", **overrides: Any) -> Ad:
    creative = Banner(
        id="cr_banner",
        width=300,
        height=250,
        image_url="https://shop.example/b.png",
        alt_text="Still thinking about {product}?",
        landing_url="https://shop.example/",
    )
    fields = {
        "width": 300,
        "height": 250,
        "image_url": "https://shop.example/b.png",
        "alt_text": alt_text,
    }
    return make_ad(creative, fields, **overrides)


def native_ad(text: str) -> Ad:
    creative = Native(
        id="cr_native",
        title="t",
        body="b",
        image_url="https://shop.example/n.png",
        landing_url="https://shop.example/",
    )
    fields = {
        "title": text,
        "body": text,
        "image_url": "https://shop.example/n.png?" + text.replace(" ", ""),
        "call_to_action": text,
    }
    return make_ad(creative, fields)


def video_ad(
    media_url: str = "https://shop.example/trailer.mp4",
    mime_type: str = "video/mp4",
    duration_seconds: int = 15,
    name: str = "Trailer",
    **overrides: Any,
) -> Ad:
    creative = Video(
        id="cr_video",
        name=name,
        media_url=media_url,
        mime_type=mime_type,  # type: ignore[arg-type]
        duration_seconds=duration_seconds,
        width=640,
        height=360,
        landing_url="https://shop.example/trailer",
    )
    fields = {
        "media_url": media_url,
        "mime_type": mime_type,
        "duration_seconds": duration_seconds,
        "width": 640,
        "height": 360,
    }
    return make_ad(creative, fields, **overrides)


def assert_valid_vast(document: bytes) -> ET.Element:
    vast_schema().validate(document.decode())  # raises, naming the element, when invalid
    return ET.fromstring(document)  # noqa: S314 - our own output


# ---- the iframe document ------------------------------------------------------------------


def test_a_banner_is_its_image_linked_to_the_click_url_plus_an_impression_beacon() -> None:
    document = render.ad_html(banner_ad())

    assert document.startswith("<!doctype html>")
    assert '<a href="https://ads.example/t/click/abc.def" target="_top">' in document
    assert (
        '<img src="https://shop.example/b.png" alt="Still thinking about Dune?"'
        ' width="300" height="250">' in document
    )
    assert f'<img src="{IMPRESSION}" alt="" width="1" height="1" hidden>' in document


def test_banner_alt_text_is_escaped() -> None:
    document = render.ad_html(banner_ad(alt_text=XSS))

    assert "<script" not in document
    assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;"' in document


def test_urls_are_escaped_in_attributes() -> None:
    ad = banner_ad(click_url='https://ads.example/t/click/x?a=1&b="><script>')

    document = render.ad_html(ad)

    assert "<script" not in document
    assert 'href="https://ads.example/t/click/x?a=1&amp;b=&quot;&gt;&lt;script&gt;"' in document


def test_every_native_field_is_escaped() -> None:
    document = render.ad_html(native_ad(XSS))

    assert "<script" not in document
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;"
    assert document.count(escaped) == 4  # title, body, call to action, image URL


def test_a_native_ad_is_a_card_linked_to_the_click_url() -> None:
    document = render.ad_html(native_ad("Books for you"))

    assert f'<a class="card" href="{CLICK}" target="_top">' in document
    assert "<b>Books for you</b><p>Books for you</p>" in document
    assert '<span class="cta">Books for you</span>' in document
    assert f'<img src="{IMPRESSION}"' in document


def test_no_ad_is_an_empty_document() -> None:
    document = render.ad_html(None)

    assert document.startswith("<!doctype html>")
    assert "<body></body>" in document
    assert "<img" not in document


def test_a_video_ad_has_no_html_form() -> None:
    with pytest.raises(ValueError, match="video"):
        render.ad_html(video_ad())


def test_the_iframe_document_has_no_script_and_its_policy_allows_none() -> None:
    document = render.ad_html(banner_ad())

    assert "<script" not in document
    assert "default-src 'none'" in render.CONTENT_SECURITY_POLICY
    assert "script-src" not in render.CONTENT_SECURITY_POLICY


# ---- VAST ---------------------------------------------------------------------------------


def test_vast_for_a_video_ad_validates_against_the_iab_4_2_schema() -> None:
    assert_valid_vast(render.vast_xml(video_ad(), ad_system_version="0.1.0"))


def test_vast_carries_the_media_file_click_through_and_impression() -> None:
    root = assert_valid_vast(render.vast_xml(video_ad()))

    assert root.get("version") == "4.2"
    inline = root.find("v:Ad/v:InLine", NS)
    assert inline is not None
    assert inline.findtext("v:AdSystem", namespaces=NS) == "retarget"
    assert inline.findtext("v:AdServingId", namespaces=NS) == "d-123"
    assert inline.findtext("v:AdTitle", namespaces=NS) == "Trailer"
    assert inline.findtext("v:Impression", namespaces=NS) == IMPRESSION
    assert inline.findtext("v:Expires", namespaces=NS) == "300"
    creative = inline.find("v:Creatives/v:Creative", NS)
    assert creative is not None
    universal = creative.find("v:UniversalAdId", NS)
    assert universal is not None
    assert (universal.get("idRegistry"), universal.text) == ("retarget", "cr_video")
    linear = creative.find("v:Linear", NS)
    assert linear is not None
    assert linear.findtext("v:Duration", namespaces=NS) == "00:00:15"
    media = linear.find("v:MediaFiles/v:MediaFile", NS)
    assert media is not None
    assert media.text == "https://shop.example/trailer.mp4"
    assert media.attrib == {
        "delivery": "progressive",
        "type": "video/mp4",
        "width": "640",
        "height": "360",
    }
    assert linear.findtext("v:VideoClicks/v:ClickThrough", namespaces=NS) == CLICK


def test_vast_tracks_only_an_event_we_count() -> None:
    root = assert_valid_vast(render.vast_xml(video_ad()))

    tracking = root.findall(".//v:TrackingEvents/v:Tracking", NS)
    assert [(t.get("event"), t.text) for t in tracking] == [("start", IMPRESSION)]


@pytest.mark.parametrize(
    ("seconds", "duration"), [(1, "00:00:01"), (75, "00:01:15"), (600, "00:10:00")]
)
def test_vast_duration_is_hours_minutes_seconds(seconds: int, duration: str) -> None:
    root = assert_valid_vast(render.vast_xml(video_ad(duration_seconds=seconds)))

    assert root.findtext(".//v:Linear/v:Duration", namespaces=NS) == duration


def test_an_hls_playlist_is_delivered_by_streaming() -> None:
    ad = video_ad(media_url="https://shop.example/v.m3u8", mime_type="application/x-mpegURL")

    root = assert_valid_vast(render.vast_xml(ad))

    media = root.find(".//v:MediaFile", NS)
    assert media is not None
    assert media.get("delivery") == "streaming"


def test_urls_with_ampersands_and_quotes_stay_valid_xml_and_round_trip() -> None:
    media_url = "https://shop.example/v.mp4?a=1&b='2'&c=\"3\"&d=<4>"
    click_url = "https://ads.example/t/click/x?a=1&b=2"
    ad = video_ad(media_url=media_url, click_url=click_url, impression_url=click_url + "&imp")

    document = render.vast_xml(ad)

    root = assert_valid_vast(document)
    assert b"a=1&amp;b=" in document
    assert root.findtext(".//v:MediaFile", namespaces=NS) == media_url
    assert root.findtext(".//v:ClickThrough", namespaces=NS) == click_url
    assert root.findtext(".//v:Impression", namespaces=NS) == click_url + "&imp"


def test_advertiser_text_in_vast_is_escaped() -> None:
    document = render.vast_xml(video_ad(name=XSS))

    root = assert_valid_vast(document)
    assert b"<script>" not in document
    assert root.findtext(".//v:AdTitle", namespaces=NS) == XSS


def test_no_ad_is_an_empty_vast_document_that_validates() -> None:
    document = render.vast_xml(None)

    root = assert_valid_vast(document)
    assert document.endswith(b'<VAST version="4.2" xmlns="http://www.iab.com/VAST"></VAST>')
    assert len(root) == 0


def test_a_banner_has_no_vast_form() -> None:
    with pytest.raises(ValueError, match="banner"):
        render.vast_xml(banner_ad())


# ---- the ad tag ---------------------------------------------------------------------------


def test_the_ad_tag_points_an_iframe_at_the_placements_ad_document() -> None:
    src = render.ad_document_url("https://ads.example", "pub_1", "home-top")

    script = render.ad_js(src, (728, 90), "slot-1")

    assert src == "https://ads.example/v1/ad?pub=pub_1&placement=home-top"
    assert '"src": "https://ads.example/v1/ad?pub=pub_1\\u0026placement=home-top"' in script
    assert '"width": "728", "height": "90"' in script
    assert '"container": "slot-1"' in script
    assert 'document.createElement("iframe")' in script
    assert "innerHTML" not in script


def test_the_ad_tag_without_a_container_follows_its_own_script_element() -> None:
    script = render.ad_js("https://ads.example/v1/ad?pub=p&placement=x", None, None)

    assert '"container": null' in script
    assert '"width": "300", "height": "250"' in script  # the default frame
    assert "document.currentScript" in script


def test_the_ad_tag_cannot_be_closed_or_commented_out_by_its_values() -> None:
    hostile = "https://ads.example</script><!--<script>alert(1)//]]>"

    script = render.ad_js(render.ad_document_url(hostile, "p", "x"), None, None)

    assert "</" not in script
    assert "<!--" not in script
    assert "]]>" not in script
    assert not re.search(r"<script", script, re.IGNORECASE)
