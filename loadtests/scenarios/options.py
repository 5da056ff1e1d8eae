"""The load test's own command-line options (listed in the README, "Load testing")."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from locust import events
from locust.env import Environment


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{raw} is not between 0 and 1")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw} is negative")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw} is negative")
    return value


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("RETARGET_ADMIN_TOKEN", ""),
        is_secret=True,
        help="Admin API token used by the setup step (default: $RETARGET_ADMIN_TOKEN).",
    )
    parser.add_argument(
        "--users-population",
        type=_positive_int,
        default=100_000,
        help="How many distinct browsers shoppers and publishers draw from (default 100000).",
    )
    parser.add_argument(
        "--zipf-exponent",
        type=_non_negative_float,
        default=1.0,
        help="Skew of user popularity: rank k is drawn ~ k^-s; 0 is uniform (default 1.0).",
    )
    parser.add_argument(
        "--purchase-ratio",
        type=_ratio,
        default=0.2,
        help="Share of shopper pixel hits that are purchases (default 0.2).",
    )
    parser.add_argument(
        "--cart-ratio",
        type=_ratio,
        default=0.3,
        help="Share that are add-to-cart events; the rest are product views (default 0.3).",
    )
    parser.add_argument(
        "--click-ratio",
        type=_ratio,
        default=0.01,
        help="Share of shown ads a browser clicks (default 0.01).",
    )
    parser.add_argument(
        "--seed-buyers",
        type=_non_negative_int,
        default=1000,
        help="The most popular users made buyers by one signed S2S batch at setup (default 1000).",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=_positive_float,
        default=1000.0,
        help="Exit non-zero when the p99 over all requests exceeds this (default 1000 ms).",
    )


@events.init.add_listener
def check_options(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.purchase_ratio + options.cart_ratio > 1:
        sys.exit("--purchase-ratio plus --cart-ratio must not exceed 1")
