"""The prompt cache's trie of runs: hand-checked cases, and a property against a plain model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from context_manager.profiles import CacheProfile
from context_manager.server import PromptCache, Segment
from context_manager.server.cache import round_cached
from context_manager.tokens import ModalityTokens

PROFILE = CacheProfile(block_tokens=10, min_prefix_tokens=20, ttl_seconds=300, scope="session")
TOKENS = {
    "h": ModalityTokens(text=10),
    "a": ModalityTokens(7, 3, 0),
    "b": ModalityTokens(0, 25, 1),
    "c": ModalityTokens(text=12),
    "d": ModalityTokens(5, 5, 5),
    "x": ModalityTokens(text=10),
}


def request(keys: str) -> list[Segment]:
    return [Segment(k, TOKENS[k]) for k in keys]


def matched(cache: PromptCache, keys: str, now: float, start: list | None = None) -> int:
    return cache.matched(request(keys), now=now, session="s", start=start or ())


# ------------------------------------------------------------------ hand-checked


def test_a_new_branch_is_one_node_holding_its_run() -> None:
    cache = PromptCache(PROFILE)
    path = cache.store(request("habc"), now=0.0, session="s")
    assert len(path) == 4 and len({id(n) for n in path}) == 1
    assert path[0].keys == ["h", "a", "b", "c"]
    assert cache.size() == 5  # the root, and one per segment as before runs
    # 10 + 10 + 26 + 12 = 58 tokens matched, 50 cached: the 8 taken from "c"'s text.
    assert cache.lookup(request("habcd"), now=10.0, session="s") == ModalityTokens(21, 28, 1)


def test_a_request_leaving_a_run_splits_it_and_only_its_part_is_used() -> None:
    cache = PromptCache(PROFILE)
    cache.store(request("habc"), now=0.0, session="s")
    path = cache.store(request("hax"), now=100.0, session="s")
    assert [n.keys for n in (path[0], path[2])] == [["h", "a"], ["x"]]
    assert path[0] is path[1]
    assert cache.size() == 6
    assert matched(cache, "habc", 299.0) == 4
    assert matched(cache, "habc", 300.0) == 2  # "b" and "c" last used at 0
    assert matched(cache, "hax", 399.0) == 3
    assert matched(cache, "hax", 400.0) == 0


def test_a_request_ending_inside_a_run_leaves_the_rest_its_own_time() -> None:
    cache = PromptCache(PROFILE)
    cache.store(request("habc"), now=0.0, session="s")
    cache.store(request("ha"), now=200.0, session="s")
    assert matched(cache, "habc", 400.0) == 2
    assert cache.lookup(request("habc"), now=400.0, session="s") == ModalityTokens(17, 3, 0)


def test_the_latest_path_counts_as_used_and_keeps_its_time_once_left() -> None:
    cache = PromptCache(PROFILE)
    first = cache.store(request("ha"), now=0.0, session="s")
    cache.store(request("hab"), now=200.0, session="s", start=first[:2])  # not re-marked
    assert matched(cache, "hab", 450.0) == 3
    cache.store(request("hx"), now=460.0, session="s")  # leaves "a", "b" behind at 200
    assert matched(cache, "hab", 499.0) == 3
    assert matched(cache, "hab", 500.0) == 1


def test_expired_branches_beside_a_new_one_are_pruned() -> None:
    cache = PromptCache(PROFILE)
    cache.store(request("hab"), now=0.0, session="s")
    cache.store(request("hx"), now=400.0, session="s")
    assert cache.size() == 3  # the root, "h" and "x": "a", "b" expired and dropped
    assert matched(cache, "hab", 400.0) == 1


def test_a_start_cut_by_a_later_split_still_resumes() -> None:
    cache = PromptCache(PROFILE)
    old = cache.store(request("habc"), now=0.0, session="s")
    cache.store(request("hax"), now=10.0, session="s")  # splits "habc" after "ha"
    assert matched(cache, "habcd", 20.0, start=old[:3]) == 4
    path = cache.store(request("habcd"), now=20.0, session="s", start=old[:3])
    assert [n.keys for n in path] == [["h", "a"]] * 2 + [["b", "c"]] * 2 + [["d"]]
    assert matched(cache, "habcd", 319.0) == 5


def test_a_copy_is_independent_and_keeps_the_times() -> None:
    cache = PromptCache(PROFILE)
    first = cache.store(request("ha"), now=0.0, session="s")
    cache.store(request("hab"), now=200.0, session="s", start=first[:2])
    twin = cache.copy()
    twin.store(request("hx"), now=210.0, session="s")
    assert twin.size() == 5 and cache.size() == 4
    assert matched(twin, "hab", 499.0) == 3 and matched(twin, "hab", 500.0) == 1
    assert matched(cache, "hx", 210.0) == 1


def test_round_cached_removes_the_excess_from_the_end() -> None:
    assert round_cached([TOKENS["a"], TOKENS["b"]], PROFILE) == ModalityTokens(7, 23, 0)
    assert round_cached([TOKENS["h"]], PROFILE) == ModalityTokens()  # below the minimum


# ------------------------------------------------------------------ against a plain model


class PlainCache:
    """The rule written out: every stored prefix with its last use (no trie, no runs)."""

    def __init__(self, profile: CacheProfile) -> None:
        self.profile = profile
        self.used: dict[tuple[str, tuple[str, ...]], float] = {}

    def store(self, keys: str, now: float, session: str) -> None:
        scope = "" if self.profile.scope == "organization" else session
        for n in range(1, len(keys) + 1):
            self.used[scope, tuple(keys[:n])] = now

    def matched(self, keys: str, now: float, session: str) -> int:
        scope = "" if self.profile.scope == "organization" else session
        count = 0
        for n in range(1, len(keys) + 1):
            used = self.used.get((scope, tuple(keys[:n])))
            if used is None or now - used >= self.profile.ttl_seconds:
                break
            count = n
        return count

    def lookup(self, keys: str, now: float, session: str) -> ModalityTokens:
        count = self.matched(keys, now, session)
        return round_cached([TOKENS[k] for k in keys[:count]], self.profile)


# Requests that share prefixes, so stores branch, split runs and leave paths behind.
keys = st.sampled_from(["", "h", "ha", "hab", "habx", "hax", "hx", "hxa", "habab"]) | st.text(
    alphabet="habx", max_size=7
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["store", "lookup", "copy"]),
        st.sampled_from(["s", "t"]),  # the session
        keys,
        st.sampled_from([0.0, 1.0, 150.0, 299.0, 300.0]),  # time passing first (TTL: 300 s)
        st.integers(min_value=0, max_value=7),  # segments to resume after, at most
    ),
    max_size=40,
)


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@given(steps, st.sampled_from(["session", "organization"]))
def test_the_trie_of_runs_gives_the_plain_models_lookups(script, scope) -> None:
    """Random stores, look-ups, copies and expiries: the same matches and cached tokens as
    every prefix kept with its last use; with walks resumed as `ServerModel` resumes them."""
    profile = PROFILE.model_copy(update={"scope": scope})
    cache, plain = PromptCache(profile), PlainCache(profile)
    now = 0.0
    last: dict[str, tuple[str, list, float]] = {}  # session -> (keys, path, time) stored
    for op, session, wanted, wait, resume in script:
        now += wait
        if op == "copy":
            cache = cache.copy()
            last.clear()  # a copy has nodes of its own: nothing to resume from
            continue
        start: list = []
        if session in last:
            before, path, when = last[session]
            if now - when < profile.ttl_seconds:  # still live: the caller's guarantee
                start = path[: min(resume, _common(before, wanted))]
        segments = request(wanted)
        total = sum((TOKENS[k] for k in wanted), ModalityTokens())
        expected = plain.matched(wanted, now, session)
        assert cache.matched(segments, now=now, session=session, start=start) == expected
        assert cache.matched(segments, now=now, session=session) == expected
        assert cache.lookup(
            segments, now=now, session=session, start=start, total=total
        ) == plain.lookup(wanted, now, session)
        assert cache.lookup(segments, now=now, session=session) == plain.lookup(
            wanted, now, session
        )
        if op == "store":
            path = cache.store(segments, now=now, session=session, start=start)
            plain.store(wanted, now, session)
            assert len(path) == len(wanted)
            assert all(n.depth <= i < n.depth + len(n.keys) for i, n in enumerate(path))
            last[session] = (wanted, path, now)
