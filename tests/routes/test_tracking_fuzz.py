"""Forged and mangled tracking tokens and cookies: never a 5xx, never a redirect elsewhere."""

from __future__ import annotations

import base64
import contextlib
import random
from urllib.parse import quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retarget import tracking
from retarget.privacy import OPT_OUT_COOKIE
from retarget.users import COOKIE_NAME
from tests import raw_asgi
from tests.helpers import Shop, banner, create_campaign, decide, open_shop, purchase

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mutate(rng: random.Random, token: str, other: str) -> str:
    """One mangled variant of a genuine ``token`` (``other``: another genuine token)."""
    payload, signature = token.split(".")
    raw = bytearray(_unb64(payload))
    kind = rng.randrange(8)
    if kind == 0:  # flip one bit of the decoded payload
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return f"{_b64(bytes(raw))}.{signature}"
    if kind == 1:  # flip one bit of the decoded signature
        sig = bytearray(_unb64(signature))
        sig[rng.randrange(len(sig))] ^= 1 << rng.randrange(8)
        return f"{payload}.{_b64(bytes(sig))}"
    if kind == 2:  # change one character of the text
        i = rng.randrange(len(token))
        return token[:i] + rng.choice("AZaz09-_.=+/%") + token[i + 1 :]
    if kind == 3:  # truncate
        return token[: rng.randrange(len(token))]
    if kind == 4:  # swap the two segments
        return f"{signature}.{payload}"
    if kind == 5:  # another token's payload under this signature, or the reverse
        other_payload, other_signature = other.split(".")
        return rng.choice([f"{other_payload}.{signature}", f"{payload}.{other_signature}"])
    if kind == 6:  # swap two claims in the payload (e.g. campaign and creative ids)
        fields = bytes(raw).split(b"|")
        i, j = rng.sample(range(len(fields)), 2)
        fields[i], fields[j] = fields[j], fields[i]
        return f"{_b64(b'|'.join(fields))}.{signature}"
    # append or insert junk
    i = rng.randrange(len(token) + 1)
    return token[:i] + rng.choice(["=", ".", "..", "%00", "A", "|", "/../"]) + token[i:]


async def test_ten_thousand_mangled_click_tokens_never_redirect(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    shop = await open_shop(client)
    landing_urls = {"https://books.example.com/one", "https://books.example.com/two"}
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        creatives=[banner(landing_url=url) for url in sorted(landing_urls)],
    )
    uid = await purchase(client, shop.pixel_id)
    tokens = [
        urlsplit(
            (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"][key]
        ).path.rsplit("/", 1)[1]
        for key in ("click_url", "impression_url")
    ]
    rng = random.Random(20261123)
    statuses: dict[int, int] = {}
    elsewhere = []

    for _ in range(10_000):
        mangled = mutate(rng, *rng.sample(tokens, 2))
        answer = await raw_asgi.get(app, "/t/click/" + quote(mangled, safe=""))
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        location = answer.headers.get("location")
        if location is not None and location not in landing_urls:
            elsewhere.append((mangled, answer.status, location))
        assert answer.status < 500, mangled
        assert answer.status in (302, 404) or "location" not in answer.headers

    assert elsewhere == []
    # Almost every mangled token is refused; the only ones that can still redirect are the
    # genuine tokens themselves (an impression token is also signed and names a creative).
    assert statuses.get(302, 0) < 100
    assert statuses.get(422, 0) > 9_000


@given(token=st.text(max_size=300))
@FUZZ
async def test_any_text_as_a_click_or_impression_token_is_refused_without_a_5xx(
    app: FastAPI, token: str
) -> None:
    for kind in ("click", "imp"):
        answer = await raw_asgi.get(app, f"/t/{kind}/{quote(token, safe='')}")

        assert 400 <= answer.status < 500
        assert "location" not in answer.headers


@given(token=st.text(max_size=400))
def test_verifying_any_text_raises_only_invalid_input(token: str) -> None:
    with contextlib.suppress(tracking.InvalidInput):
        tracking.verify("secret", token, 0)


_cookie_text = st.text(
    st.characters(codec="utf-8", exclude_characters=";\r\n\x00"), max_size=120
) | st.sampled_from(["", " ", '"', "\\", "=", "==", "%", "a" * 5000])


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> Shop:
    """Set up once per test (not per example): a real pixel and placement to aim at."""
    return await open_shop(client)


@given(uid=_cookie_text, opt_out=_cookie_text, gpc=st.sampled_from(["", "1", "0", "x"]))
@FUZZ
async def test_any_rt_uid_or_opt_out_cookie_gets_no_5xx_from_the_cookie_reading_endpoints(
    app: FastAPI, shop: Shop, uid: str, opt_out: str, gpc: str
) -> None:
    cookie = f"{COOKIE_NAME}={uid}; {OPT_OUT_COOKIE}={opt_out}"
    headers = {"cookie": cookie, "user_agent": BROWSER, "sec_gpc": gpc}

    for path, query in [
        (f"/px/{shop.pixel_id}.gif", b"cat=books"),
        ("/v1/ad", f"pub={shop.publisher_id}&placement=feed-top".encode()),
        ("/v1/ad.js", f"pub={shop.publisher_id}&placement=feed-top".encode()),
        ("/optout", b""),
    ]:
        answer = await raw_asgi.get(app, path, query, **headers)

        assert answer.status < 500, (path, answer.status, answer.body[:200])
        assert "location" not in answer.headers
