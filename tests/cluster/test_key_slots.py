"""The hash-tag rule, checked without a cluster: every key a script call names for one user,
and every configuration key, hash to one slot (``redis.crc.key_slot``, the cluster's CRC16)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from retarget.errors import InvalidInput
from retarget.store import keys
from retarget.users import UserRef, parse_user

ids = st.one_of(
    st.tuples(st.just("cookie"), st.from_regex(r"[A-Za-z0-9_-]{22}", fullmatch=True)),
    st.tuples(st.just("email"), st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
    st.tuples(st.just("maid"), st.uuids().map(str)),
    # Anything else a client might send: only what parse_user accepts can reach a key.
    st.tuples(st.sampled_from(["cookie", "email", "maid"]), st.text(max_size=80)),
)


def slots(names: list[str]) -> set[int]:
    return {key_slot(name.encode()) for name in names}


@given(ids)
def test_every_key_of_a_user_hashes_to_one_slot(namespace_and_id: tuple[str, str]) -> None:
    try:
        user: UserRef = parse_user(*namespace_and_id)
    except InvalidInput:
        return
    assert len(slots(keys.user_keys(user))) == 1


def test_every_configuration_key_hashes_to_the_slot_of_the_version() -> None:
    families = [keys.config_family(family) for family in keys.CONFIG_FAMILIES]

    assert slots([keys.CONFIG_VERSION, *families]) == {key_slot(keys.CONFIG_VERSION.encode())}
