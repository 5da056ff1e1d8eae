"""Page templates escape every value; JSON for scripts cannot end its script block."""

from __future__ import annotations

import json
from importlib.resources import files

from hypothesis import given
from hypothesis import strategies as st

from retarget import pages
from retarget.demo import PRODUCTS

HOSTILE = "</script><script>alert(1)</script><!-- \" ' &amp;"


def test_a_value_in_a_page_is_escaped() -> None:
    html = pages.render("dashboard_signin.html", error=HOSTILE)
    assert "<script>alert(1)" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


@given(
    st.recursive(
        st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    )
)
def test_json_for_a_script_block_reads_back_the_same_and_cannot_close_it(value: object) -> None:
    text = str(pages.json_for_script(value))
    assert "<" not in text
    assert ">" not in text
    assert json.loads(text) == value


def test_json_for_a_script_block_survives_a_closing_tag() -> None:
    text = str(pages.json_for_script({"label": HOSTILE}))
    assert "</script" not in text.lower()
    assert json.loads(text) == {"label": HOSTILE}


def test_every_demo_product_has_its_image_in_the_package() -> None:
    static = files("retarget") / "static"
    for product in PRODUCTS:
        assert (static / product.image_path.removeprefix("/static/")).is_file()
