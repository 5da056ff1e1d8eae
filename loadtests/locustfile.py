"""Realistic traffic against a running retarget service (README, "Load testing").

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 1m

Shoppers fire the purchase pixel (and cart and view events) for Zipf-distributed users,
publishers ask for ads for a social feed, a games site and a video site, and browsers fire
the impression of every ad served and click about 1 % of them. The setup creates (or reuses)
the ``locust shop`` advertiser, its audiences and campaigns, and the publishers through the
admin API. The exit code is 1 when a request failed or the p99 is over ``--max-p99-ms``.
"""

from scenarios import options, setup, thresholds  # noqa: F401  (their listeners register)
from scenarios.browsers import Browser
from scenarios.publishers import Publisher
from scenarios.shoppers import Shopper

__all__ = ["Browser", "Publisher", "Shopper"]
