"""The decision's one round trip: store/decide.lua over the user's hash-tagged keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retarget.decisions import Plan
from retarget.store import keys
from retarget.store.autopipeline import Landed, LuaScript
from retarget.store.client import HotPipeline
from retarget.store.scripts import lua_script
from retarget.store.users import decode_purchase
from retarget.users import UserRef


# Not frozen: a frozen dataclass sets each field through object.__setattr__, per decision.
@dataclass(slots=True)
class Win:
    campaign_id: str
    prior_impressions: int
    last_purchase: dict[str, Any] | None


@dataclass(slots=True)
class ScriptOutcome:
    wins: list[Win | None]  # per slot
    rejections: list[tuple[str, str]]  # (campaign id, reason), with explain only


# The generic script gets a plan's two strings (audience index, candidate lines) with every
# call. Past this size (from about sixty candidates) they are compiled into a script of
# their own instead, which Redis keeps: a call then sends the user's keys and four short
# arguments, not 160 KB (1,076 candidates, 10,000 campaigns in the scaling benchmark).
PLAN_SCRIPT_MIN_BYTES = 4 * 1024
_PLAN_LINE = "local index, lines = ARGV[5], ARGV[6]"


def _lua_literal(text: str) -> str:
    """``text`` as a Lua long-bracket string: no escapes, so 100 KB parse at memcpy speed.
    (The newline after the opening bracket is one Lua drops; the text keeps its own.)"""
    level = 1  # never [[ ]]: Redis's Lua 5.1 refuses a [[ nested in one
    while f"[{'=' * level}[" in text or f"]{'=' * level}" in text:
        level += 1
    return f"[{'=' * level}[\n{text}]{'=' * level}]"


def plan_script(generic: LuaScript, plan: Plan) -> LuaScript | None:
    """decide.lua with the plan's strings in its source, or None if the plan is small or its
    strings cannot be a long-bracket literal as they are (a carriage return, non-ASCII)."""
    if len(plan.audiences) + len(plan.specs) < PLAN_SCRIPT_MIN_BYTES:
        return None
    both = plan.audiences + plan.specs
    if not both.isascii() or b"\r" in both:
        return None
    index, lines = (_lua_literal(blob.decode()) for blob in (plan.audiences, plan.specs))
    return LuaScript(
        generic.source.replace(_PLAN_LINE, f"local index, lines = {index}, {lines}", 1)
    )


class DecisionStore:
    """Sends decisions, each one EVALSHA of decide.lua or of its plan's own compiled copy.

    Redis keeps every script it is sent until SCRIPT FLUSH. Plans change with the catalog,
    so once the compiled copies this worker has sent pass ``max_script_bytes``,
    ``flush_scripts`` (SCRIPT FLUSH ASYNC on every master) is called: a script then missing
    is sent again once, with EVAL, by the call that finds it missing."""

    def __init__(
        self,
        pipeline: HotPipeline,
        flush_scripts: Callable[[], object] = lambda: None,
        max_script_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._pipeline = pipeline
        self._decide = lua_script("decide")
        assert _PLAN_LINE in self._decide.source
        self._flush_scripts = flush_scripts
        self._max_script_bytes = max_script_bytes
        # id(plan) -> (plan, its script or None); plans live as long as a catalog version.
        self._compiled: dict[int, tuple[Plan, LuaScript | None]] = {}
        self._sent: set[str] = set()
        self._sent_bytes = 0

    def _script_of(self, plan: Plan) -> LuaScript | None:
        found = self._compiled.get(id(plan))
        if found is not None and found[0] is plan:
            return found[1]
        script = plan_script(self._decide, plan)
        if len(self._compiled) > 10_000:
            self._compiled.clear()
        self._compiled[id(plan)] = (plan, script)
        if script is not None and script.sha not in self._sent:
            if self._sent_bytes + len(script.source) > self._max_script_bytes:
                self._flush_scripts()
                self._sent.clear()
                self._sent_bytes = 0
            self._sent.add(script.sha)
            self._sent_bytes += len(script.source)
        return script

    def send(
        self,
        user: UserRef,
        plan: Plan,
        blocked: list[int],
        slots: int,
        now: float,
        explain: bool,
        landed: Landed | None = None,
    ) -> asyncio.Future[Any]:
        """Check the user's rules for the candidates, best first, and record the winners.

        Returns the pending reply (read it with ``outcome``): the caller may stop waiting
        for it at a deadline without disturbing the connection; ``landed`` hears how the
        call really ended."""
        user_keys = (keys.user_profile(user), keys.user_frequency(user))
        argv = (int(now), slots, "1" if explain else "0", ",".join(f"{i:x}" for i in blocked))
        script = self._script_of(plan)
        if script is not None:
            return self._pipeline.evalsha(script, user_keys, argv, landed)
        return self._pipeline.evalsha(
            self._decide, user_keys, (*argv, plan.audiences, plan.specs), landed
        )

    @staticmethod
    def outcome(reply: list[Any], slots: int) -> ScriptOutcome:
        """The script's flat reply: per slot its campaign ("" for none), the user's prior
        impressions of it and the last purchase JSON; then (campaign, reason) pairs."""
        wins: list[Win | None] = []
        for i in range(0, 3 * slots, 3):
            campaign, prior, purchase = reply[i : i + 3]
            wins.append(
                Win(campaign.decode(), prior, decode_purchase(purchase) if purchase else None)
                if campaign
                else None
            )
        reasons = [
            (reply[i].decode(), reply[i + 1].decode()) for i in range(3 * slots, len(reply), 2)
        ]
        return ScriptOutcome(wins, reasons)
