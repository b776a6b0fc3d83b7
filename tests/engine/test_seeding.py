"""Naming a rollover's seed: one summary id, and a distinct id for every other copy.

An application may send system messages of its own (Pipecat sends appended text as system
items); in a seed they are items of the call like any other, not a second summary.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from context_manager.items import Message
from context_manager.live.seeding import name_seed

SUMMARY = Message(role="system", text="Summary of the call so far: booking K042, aisle seat.")
HISTORY = [
    Message(role="system", text="Note: the caller is a frequent flyer.", id="k1"),
    Message(role="user", text="Change my seat to the aisle.", id="k2"),
    Message(role="system", text="Note: the caller prefers email.", id="k3"),
]


def test_an_application_s_system_messages_are_copies_not_summaries() -> None:
    seed = [SUMMARY, *(Message(role=m.role, text=m.text) for m in HISTORY)]
    named, seeded = name_seed(seed, HISTORY, 2, origins=[None, "k1", "k2", "k3"])
    assert [i.id for i in named] == ["summary_r2", "seed2_1", "seed2_2", "seed2_3"]
    assert seeded == {"summary_r2": None, "seed2_1": "k1", "seed2_2": "k2", "seed2_3": "k3"}


def test_without_origins_the_copies_are_found_by_content() -> None:
    seed = [SUMMARY, *(Message(role=m.role, text=m.text) for m in HISTORY)]
    named, seeded = name_seed(seed, HISTORY, 3)
    assert [i.id for i in named] == ["summary_r3", "seed3_1", "seed3_2", "seed3_3"]
    assert seeded == {"summary_r3": None, "seed3_1": "k1", "seed3_2": "k2", "seed3_3": "k3"}


def test_two_system_items_of_no_known_origin_get_two_ids() -> None:
    seed = [SUMMARY, Message(role="system", text="An instruction the history does not hold.")]
    named, seeded = name_seed(seed, HISTORY, 1, origins=[None, None])
    assert [i.id for i in named] == ["summary_r1", "seed1_1"]
    assert seeded == {"summary_r1": None, "seed1_1": None}


@given(st.lists(st.sampled_from(["system", "user", "assistant"]), max_size=12), st.data())
def test_seed_ids_are_unique_and_there_is_at_most_one_summary(roles: list[str], data) -> None:  # type: ignore[no-untyped-def]
    seed = [Message(role=role, text=f"text {n}") for n, role in enumerate(roles)]  # type: ignore[arg-type]
    origins = data.draw(st.lists(st.sampled_from([None, "k1", "k2"]), min_size=len(seed),
                                 max_size=len(seed)))  # fmt: skip
    named, seeded = name_seed(seed, HISTORY, 4, origins=origins)
    ids = [i.id for i in named]
    assert len(set(ids)) == len(ids) == len(seeded)
    assert sum(i.startswith("summary_") for i in ids) <= 1
