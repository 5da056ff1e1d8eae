"""Shoppers: browsers on the shop's pages firing the pixel for views, carts and purchases."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from locust import task

from .shop import PRODUCTS
from .simulated import SimulatedUser

PIXEL_NAME = "/px/[pixel].gif"


class Shopper(SimulatedUser):
    """Each hit comes from a Zipf-drawn browser, so popular users keep coming back."""

    weight = 2

    def on_start(self) -> None:
        super().on_start()
        options = self.environment.parsed_options
        self.purchase_ratio = options.purchase_ratio
        self.cart_ratio = options.cart_ratio

    def event_type(self) -> str:
        draw = self.rng.random()
        if draw < self.purchase_ratio:
            return "purchase"
        return "cart" if draw < self.purchase_ratio + self.cart_ratio else "view"

    @task
    def fire_pixel(self) -> None:
        event = self.event_type()
        product = self.rng.choice(PRODUCTS)
        params = {"ev": event, "sku": product.sku, "pn": product.name, "cat": product.category}
        if event != "view":
            params |= {"val": f"{product.price:.2f}", "cur": "EUR"}
        if event == "purchase":
            params["oid"] = f"locust-{uuid.uuid4().hex}"  # a new order: never a duplicate
        with self.client.get(
            f"/px/{self.fixture.pixel_id}.gif?{urlencode(params)}",
            headers={"Cookie": f"rt_uid={self.population.user()}"},
            name=PIXEL_NAME,
            catch_response=True,
        ) as response:
            # The pixel always answers a GIF; what went wrong is in X-Retarget-Error.
            error = response.headers.get("X-Retarget-Error")
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or error or not content_type.startswith("image/gif"):
                response.failure(f"{response.status_code} {content_type}: {error}")
