"""Creative text macros: which texts are accepted, and what a filled text says."""

from __future__ import annotations

import pytest

from retarget import macros

# check


@pytest.mark.parametrize(
    "text",
    [
        "Come back and buy again",
        "Still thinking about {product}?",
        "More {category} for you",
        "Still thinking about {product|our new arrivals}?",
        "{product|a book} and more {category|books}",
        "Nothing to say: {product|}",
        "Pipes in a fallback: {product|this | that}",
        "",
    ],
)
def test_check_accepts_plain_text_and_known_macros(text: str) -> None:
    assert macros.check(text) == text


@pytest.mark.parametrize(
    "text",
    ["Only {price} today", "{sku|a book}", "{product_name}", "{__class__}", "{}"],
)
def test_check_refuses_an_unknown_macro(text: str) -> None:
    with pytest.raises(ValueError, match=r"unknown macro|braces"):
        macros.check(text)


def test_check_names_the_unknown_macro_and_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown macro \{price\}; known: product, category"):
        macros.check("Only {price} today")


@pytest.mark.parametrize(
    "text",
    [
        "Hello {product",
        "Hello product}",
        "{{product}}",
        "{product|{category}}",
        "{Product}",
        "{ product }",
        "{product.__class__}",
        "{0}",
        "{product!r}",
        "{product:>10}",
        "{product|" + "x" * 101 + "}",
    ],
)
def test_check_refuses_a_stray_brace(text: str) -> None:
    with pytest.raises(ValueError, match="braces are only for macros"):
        macros.check(text)


# fill


def test_fill_puts_in_the_value_of_each_macro() -> None:
    filled = macros.fill(
        "Still thinking about {product}? More {category} inside.",
        {"product": "Dune", "category": "books"},
    )

    assert filled == "Still thinking about Dune? More books inside."


def test_fill_uses_the_fallback_when_the_value_is_missing() -> None:
    assert macros.fill("About {product|our new arrivals}?", {}) == "About our new arrivals?"


@pytest.mark.parametrize("value", [None, ""])
def test_fill_uses_the_fallback_when_the_value_is_empty(value: str | None) -> None:
    assert macros.fill("About {product|our new arrivals}?", {"product": value}) == (
        "About our new arrivals?"
    )


def test_fill_prefers_the_value_to_the_fallback() -> None:
    assert macros.fill("About {product|our new arrivals}?", {"product": "Dune"}) == "About Dune?"


def test_fill_leaves_nothing_for_a_missing_value_without_fallback() -> None:
    assert macros.fill("More {category} for you", {}) == "More  for you"


def test_fill_leaves_text_without_macros_as_it_is() -> None:
    assert macros.fill("Come back soon", {"product": "Dune"}) == "Come back soon"


def test_fill_does_not_fill_macros_inside_a_value() -> None:
    filled = macros.fill("{product}", {"product": "{category}", "category": "books"})

    assert filled == "{category}"


def test_fill_puts_a_value_in_as_plain_text() -> None:
    hostile = "<script>alert(1)</script>"

    assert macros.fill("Buy {product}", {"product": hostile}) == f"Buy {hostile}"


def test_fill_does_not_evaluate_format_fields() -> None:
    text = "{product.__class__} {0} {product!r} {product:>10}"

    assert macros.fill(text, {"product": "Dune"}) == text


def test_fill_never_fills_a_name_other_than_product_and_category() -> None:
    # The values come from a purchase, which holds more than product and category.
    purchase = {"product": "Dune", "sku": "SKU-SECRET", "order_id": "ORDER-SECRET"}

    filled = macros.fill("{product} {sku} {order_id}", purchase)

    assert "SKU-SECRET" not in filled
    assert "ORDER-SECRET" not in filled
    assert filled.startswith("Dune ")
