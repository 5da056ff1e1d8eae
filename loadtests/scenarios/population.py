"""Who the simulated browsers are: ranks 1..N drawn from a Zipf law, each a stable rt_uid.

A few users come back again and again and most are seen once, as on a real shop. Rank 1 is
the most popular; the same rank always maps to the same cookie id, across processes and runs.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random

_SALT = b"retarget-locust"


def cookie_id(rank: int) -> str:
    """The rt_uid of the user at ``rank``: 22 URL-safe characters, like the service's own."""
    digest = hashlib.sha256(_SALT + b":" + str(rank).encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class Population:
    """``size`` users; rank k is drawn with probability roughly proportional to k^-exponent.

    Sampled in O(1) by inverting the CDF of the continuous power law on [1, size + 1) and
    rounding down, which is close to the discrete Zipf law and needs no table.
    """

    def __init__(self, size: int, exponent: float, rng: random.Random) -> None:
        if size < 1:
            raise ValueError("a population has at least one user")
        if exponent < 0:
            raise ValueError("the Zipf exponent is not negative")
        self.size = size
        self.exponent = exponent
        self._rng = rng
        self._one_minus_s = 1.0 - exponent
        self._span = (size + 1) ** self._one_minus_s - 1.0 if exponent != 1 else 0.0

    def rank(self) -> int:
        """A rank in 1..size; small ranks are the popular ones."""
        u = self._rng.random()
        if self.exponent == 1:
            x = math.exp(u * math.log(self.size + 1))
        else:
            x = (1.0 + u * self._span) ** (1.0 / self._one_minus_s)
        return min(self.size, max(1, int(x)))

    def user(self) -> str:
        """The cookie id of a drawn user."""
        return cookie_id(self.rank())
