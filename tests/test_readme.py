"""The README is part of the interface: its settings table and quick start must stay true."""

from __future__ import annotations

import re
from pathlib import Path

from retarget.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """The text under ``## title``, up to the next second-level heading."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match[1]


def test_the_configuration_table_lists_every_setting_and_nothing_else() -> None:
    rows = [line for line in section("Configuration").splitlines() if line.startswith("|")]
    documented = {m[1] for row in rows if (m := re.match(r"\|\s*`(RETARGET_\w+)`", row))}

    assert documented == {f"RETARGET_{name.upper()}" for name in Settings.model_fields}


def test_the_quick_start_is_make_run_and_make_test() -> None:
    block = re.search(r"```\w*\n(.*?)```", section("Quick start"), re.S)

    assert block, "the quick start has no code block"
    assert block[1].strip().splitlines() == ["make run", "make test"]
