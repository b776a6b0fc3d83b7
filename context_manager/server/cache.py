"""The prompt cache: which leading tokens of a request were already processed.

DESIGN.md, "Prompt cache". A request is a sequence of segments: the instructions, the tools,
then each retained item. Each served request (with its output, when the profile says the
output is cached too) becomes a cached prefix with a last-used time; a prefix unused for
``ttl_seconds`` expires. A new request's cached tokens are its longest common prefix with a
live cached prefix, compared segment by segment (a changed or dropped segment breaks the
match at its start), rounded down to a multiple of ``block_tokens``, and 0 below
``min_prefix_tokens``. The split by modality follows the matched segments in order, each
segment laid out as text, then audio, then image; the rounding removes tokens from the end.

The prefixes live in a trie keyed by segment, so a lookup costs one step per matched segment
however many prefixes are cached, and a stored request shares its path with the earlier
requests it extends. Expired branches are pruned as stores pass by them, so memory follows
the live prefixes, not the length of the conversation.

>>> from context_manager.profiles import CacheProfile
>>> from context_manager.tokens import ModalityTokens
>>> cache = PromptCache(CacheProfile(block_tokens=64, min_prefix_tokens=64, ttl_seconds=300,
...                                  scope="session"))
>>> request = [Segment("instructions", ModalityTokens(text=100)),
...            Segment("u1", ModalityTokens(4, 27))]
>>> cache.lookup(request, now=0.0, session="s")
ModalityTokens(text=0, audio=0, image=0)
>>> path = cache.store(request, now=0.0, session="s")  # the nodes of its two segments
>>> len(path)
2
>>> cache.lookup([*request, Segment("a1", ModalityTokens(12, 42))], now=10.0, session="s")
ModalityTokens(text=104, audio=24, image=0)
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from ..profiles import CacheProfile
from ..tokens import ModalityTokens

__all__ = ["PromptCache", "Segment", "round_cached"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a request: its identity (equal keys mean identical content) and tokens."""

    key: Hashable
    tokens: ModalityTokens
    total: int = field(init=False)
    """All of `tokens` (kept on the segment: truncation sums it for every item, every response)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", self.tokens.total)


class _Node:
    __slots__ = ("children", "last_used")

    def __init__(self, last_used: float) -> None:
        self.children: dict[Hashable, _Node] = {}
        self.last_used = last_used


def round_cached(matched: Sequence[ModalityTokens], profile: CacheProfile) -> ModalityTokens:
    """Cached tokens by modality for a matched run of segments (the block and minimum rule).

    >>> p = CacheProfile(block_tokens=64, min_prefix_tokens=64, ttl_seconds=300, scope="session")
    >>> round_cached([ModalityTokens(text=15, audio=27), ModalityTokens(text=12, audio=42)], p)
    ModalityTokens(text=27, audio=37, image=0)
    """
    if not matched:
        return ModalityTokens()
    sums = ModalityTokens(*map(sum, zip(*matched, strict=True)))  # by modality, in C
    return _rounded(sums, reversed(matched), profile)


def _rounded(
    sums: ModalityTokens, newest_first: Iterable[ModalityTokens], profile: CacheProfile
) -> ModalityTokens:
    """`sums` of a matched run rounded down to whole blocks, the excess taken from its end."""
    text, audio, image = sums
    total = text + audio + image
    cached = total - total % profile.block_tokens
    if cached < profile.min_prefix_tokens:
        return ModalityTokens()
    excess = total - cached
    # Remove the excess from the end: the last segment's image, then audio, then text, ...
    for seg in newest_first:
        if excess == 0:
            break
        for part in (2, 1, 0):
            take = min(excess, seg[part])
            if part == 2:
                image -= take
            elif part == 1:
                audio -= take
            else:
                text -= take
            excess -= take
    return ModalityTokens(text, audio, image)


class PromptCache:
    """Cached prefixes of served requests, for one session or a whole organization.

    Share one instance between `ServerModel` sessions to model an organization-wide cache
    (``scope = "organization"``); with ``scope = "session"`` each session id has its own
    prefixes even in a shared instance.
    """

    def __init__(self, profile: CacheProfile) -> None:
        self.profile = profile
        self._roots: dict[str, _Node] = {}

    def _root(self, session: str, create: bool) -> _Node | None:
        scope = "" if self.profile.scope == "organization" else session
        root = self._roots.get(scope)
        if root is None and create:
            root = self._roots[scope] = _Node(0.0)
        return root

    def _live(self, node: _Node, now: float) -> bool:
        return now - node.last_used < self.profile.ttl_seconds

    def matched(
        self,
        segments: Sequence[Segment],
        *,
        now: float,
        session: str,
        start: Sequence[_Node] = (),
    ) -> int:
        """How many leading segments match a live cached prefix.

        `start` may give the nodes of the first segments, as `store` returned them for an
        earlier request with the same leading segments, all still live: the walk resumes
        after them (the caller vouches for both conditions; `ServerModel` tracks them).
        """
        node = self._root(session, create=False)
        count = 0
        if node is None:
            return 0
        if start:
            node, count = start[-1], len(start)
        ttl = self.profile.ttl_seconds
        for seg in segments[count:]:  # the hot loop of every response: `_live` inlined
            child = node.children.get(seg.key)
            if child is None or now - child.last_used >= ttl:
                break
            node = child
            count += 1
        return count

    def lookup(
        self,
        segments: Sequence[Segment],
        *,
        now: float,
        session: str,
        start: Sequence[_Node] = (),
        total: ModalityTokens | None = None,
    ) -> ModalityTokens:
        """Cached tokens, by modality, of a request made of `segments` at time `now`.

        `start`: as for `matched`. `total`: the request's tokens, when the caller keeps them
        (the matched run's are then the total less the unmatched tail, usually short).
        """
        count = self.matched(segments, now=now, session=session, start=start)
        if total is None or count == 0 or count <= len(segments) - count:
            return round_cached([s.tokens for s in segments[:count]], self.profile)
        # The shorter side is summed, by modality in C: here the unmatched tail (a truncation
        # at a full window leaves it as long as the request, hence the other branch).
        tail = [s.tokens for s in segments[count:]]
        sums = total - ModalityTokens(*map(sum, zip(*tail, strict=True))) if tail else total
        return _rounded(sums, (segments[n].tokens for n in range(count - 1, -1, -1)), self.profile)

    def store(
        self,
        segments: Sequence[Segment],
        *,
        now: float,
        session: str,
        start: Sequence[_Node] = (),
    ) -> list[_Node]:
        """Record a served request (and its output, if cached) as a prefix used at `now`.

        Returns the nodes of its segments, in order. `start`: as for `matched` (the nodes are
        marked used without looking them up again).
        """
        node = self._root(session, create=True)
        assert node is not None
        node.last_used = now
        path = list(start)
        for known in path:
            known.last_used = now
        if path:
            node = path[-1]
        ttl = self.profile.ttl_seconds
        for seg in segments[len(path) :]:
            children = node.children
            child = children.get(seg.key)
            if child is None:
                # A new branch: first drop the expired ones beside it, so what no live request
                # can reach does not pile up (a branch point is where old prefixes end).
                stale = [k for k, c in children.items() if now - c.last_used >= ttl]
                for key in stale:
                    del children[key]
                child = children[seg.key] = _Node(now)
            else:
                child.last_used = now
            node = child
            path.append(child)
        return path

    def copy(self) -> PromptCache:
        """An independent copy (iterative: paths are too deep for `copy.deepcopy`)."""
        other = PromptCache(self.profile)
        stack: list[tuple[_Node, _Node]] = []
        for scope, root in self._roots.items():
            twin = other._roots[scope] = _Node(root.last_used)
            stack.append((root, twin))
        while stack:
            node, twin = stack.pop()
            for key, child in node.children.items():
                copied = twin.children[key] = _Node(child.last_used)
                stack.append((child, copied))
        return other

    def size(self) -> int:
        """How many segment nodes are held (for memory checks)."""
        stack = list(self._roots.values())
        count = 0
        while stack:
            node = stack.pop()
            count += 1
            stack.extend(node.children.values())
        return count
