"""The demo site: ``/demo/shop`` (an advertiser with the pixel) and ``/demo/social``,
``/demo/games``, ``/demo/video`` (publishers with the ad tag or a VAST player).

Static templates, every value escaped, our own origin only (see ``pages``). The pages find
what ``retarget demo`` seeded in the catalog by name; before that they answer 404.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse, RedirectResponse, Response

from retarget import demo, pages
from retarget.errors import NotFound
from retarget.routes.deps import FreshCatalog

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

Sku = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
OrderId = Annotated[str, Query(pattern=r"^demo-[0-9a-f]{12}$")]


def _page(template: str, **context: object) -> Response:
    return HTMLResponse(pages.render(template, **context), headers=pages.PAGE_HEADERS)


def _demo_site(catalog: FreshCatalog) -> demo.DemoSite:
    site = demo.find_demo(catalog)
    if site is None:
        raise NotFound("the demo is not seeded: run `retarget demo`", field="demo")
    return site


def _product(sku: str) -> demo.Product:
    product = demo.PRODUCTS_BY_SKU.get(sku)
    if product is None:
        raise NotFound(f"no product {sku} in the demo shop", field="sku")
    return product


@router.get("")
async def index() -> Response:
    return _page("demo_index.html")


@router.get("/shop")
async def shop(
    catalog: FreshCatalog, utm_source: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    site = _demo_site(catalog)
    return _page(
        "demo_shop.html",
        shop_name=site.shop.name,
        products=demo.PRODUCTS,
        currency=demo.CURRENCY,
        back_from_ad=utm_source == "retarget",
    )


@router.get("/shop/checkout")
async def checkout(sku: Sku) -> Response:
    """A new order id, then the confirmation page: reloading it fires the pixel with the
    same order id, which the service counts once."""
    product = _product(sku)
    query = urlencode({"sku": product.sku, "oid": demo.new_order_id()})
    return RedirectResponse(f"/demo/shop/thanks?{query}", status_code=303)


@router.get("/shop/thanks")
async def thanks(catalog: FreshCatalog, sku: Sku, oid: OrderId) -> Response:
    site = _demo_site(catalog)
    product = _product(sku)
    return _page(
        "demo_thanks.html",
        shop_name=site.shop.name,
        product=product,
        currency=demo.CURRENCY,
        order_id=oid,
        pixel_url=demo.pixel_url(site.shop.pixel_id, product, oid),
    )


@router.get("/video")
async def video_site(catalog: FreshCatalog) -> Response:
    site = _demo_site(catalog)
    publisher = site.publishers["video"]
    placement = demo.PUBLISHERS_BY_SLUG["video"].placements[0]["id"]
    return _page(
        "demo_video.html",
        publisher=publisher,
        headline=demo.PUBLISHERS_BY_SLUG["video"].headline,
        vast_url="/v1/vast?" + urlencode({"pub": publisher.id, "placement": placement}),
    )


@router.get("/{slug}")
async def publisher_site(slug: str, catalog: FreshCatalog) -> Response:
    described = demo.PUBLISHERS_BY_SLUG.get(slug)
    if described is None or slug == "video":
        raise NotFound(f"no demo page {slug}", field="slug")
    publisher = _demo_site(catalog).publishers[slug]
    placements = [
        {"id": slot["id"], "tag_src": _ad_tag(publisher.id, slot["id"])}
        for slot in described.placements
    ]
    return _page(
        "demo_publisher.html",
        publisher=publisher,
        slug=slug,
        headline=described.headline,
        placements=placements,
    )


def _ad_tag(publisher_id: str, placement_id: str) -> str:
    """The ``<script src>`` a publisher pastes (``GET /v1/ad.js``), filling ``ad-<placement>``."""
    query = {"pub": publisher_id, "placement": placement_id, "container": f"ad-{placement_id}"}
    return "/v1/ad.js?" + urlencode(query)
