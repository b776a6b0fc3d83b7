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
requests it extends. A node holds a run of segments that no request has branched inside: a
new branch (a whole request, after a truncation) is one node, split only where a later
request leaves it. The latest stored path of each scope is held as a list, and its nodes
count as used at its time by being on it, so a store marks only the nodes it adds and the
ones the previous path leaves behind, not the whole request. Expired branches are pruned as
stores pass by them, so memory follows the live prefixes, not the length of the conversation.

>>> from context_manager.profiles import CacheProfile
>>> from context_manager.tokens import ModalityTokens
>>> cache = PromptCache(CacheProfile(block_tokens=64, min_prefix_tokens=64, ttl_seconds=300,
...                                  scope="session"))
>>> request = [Segment("instructions", ModalityTokens(text=100)),
...            Segment("u1", ModalityTokens(4, 27))]
>>> cache.lookup(request, now=0.0, session="s")
ModalityTokens(text=0, audio=0, image=0)
>>> path = cache.store(request, now=0.0, session="s")  # the node of each of its segments
>>> len(path)
2
>>> cache.lookup([*request, Segment("a1", ModalityTokens(12, 42))], now=10.0, session="s")
ModalityTokens(text=104, audio=24, image=0)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

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


_tokens = attrgetter("tokens")


class _Node:
    """A run of segment keys always stored together, so one last-used time serves them all."""

    __slots__ = ("children", "depth", "keys", "last_used")

    def __init__(self, keys: list[Hashable], depth: int, last_used: float) -> None:
        self.keys = keys  # never changed in place: a split gives both halves new lists
        self.depth = depth  # segments before the run
        self.children: dict[Hashable, _Node] = {}  # by the first key of each child's run
        self.last_used = last_used


class _Tree:
    """One scope's prefixes, and its latest stored path: the node of each of its segments."""

    __slots__ = ("path", "root", "time")

    def __init__(self) -> None:
        self.root = _Node([], 0, 0.0)
        self.path: list[_Node] = []
        self.time = -math.inf  # when `path` was stored: its nodes' last use

    def used(self, node: _Node) -> float:
        """When `node` was last stored: the latest path's time if it is on that path."""
        depth = node.depth
        path = self.path
        return self.time if depth < len(path) and path[depth] is node else node.last_used

    def split(self, node: _Node, at: int) -> None:
        """Cut `node`'s run before segment `at` (inside it); the node keeps the first part."""
        cut = at - node.depth
        lower = _Node(node.keys[cut:], at, node.last_used)
        lower.children = node.children
        node.keys = node.keys[:cut]
        node.children = {lower.keys[0]: lower}
        path = self.path
        if node.depth < len(path) and path[node.depth] is node:
            # The latest path runs through the whole node: it names the lower part now.
            path[at : at + len(lower.keys)] = [lower] * len(lower.keys)


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


def _known(root: _Node, segments: Sequence[Segment], count: int) -> tuple[list[_Node], _Node]:
    """The path of the first `count` segments, stored and live, found from the root."""
    path: list[_Node] = []
    node = root
    while len(path) < count:
        node = node.children[segments[node.depth + len(node.keys)].key]
        path += [node] * len(node.keys)
    del path[count:]
    return path, node


class PromptCache:
    """Cached prefixes of served requests, for one session or a whole organization.

    Share one instance between `ServerModel` sessions to model an organization-wide cache
    (``scope = "organization"``); with ``scope = "session"`` each session id has its own
    prefixes even in a shared instance.
    """

    def __init__(self, profile: CacheProfile) -> None:
        self.profile = profile
        self._trees: dict[str, _Tree] = {}

    def _scope(self, session: str) -> str:
        return "" if self.profile.scope == "organization" else session

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
        tree = self._trees.get(self._scope(session))
        if tree is None:
            return 0
        count = len(start)
        if count:
            node = start[-1]
            # A later split may have moved the last of them into a lower part: follow it.
            while node.depth + len(node.keys) < count:
                node = node.children[segments[node.depth + len(node.keys)].key]
        else:
            node = tree.root
        ttl = self.profile.ttl_seconds
        keys, depth = node.keys, node.depth
        end = depth + len(keys)
        for seg in segments[count:]:  # the hot loop of every response
            key = seg.key
            if count < end:  # inside a run: its keys, under its node's time
                known = keys[count - depth]
                if known is not key and known != key:
                    break
            else:
                child = node.children.get(key)
                if child is None or now - tree.used(child) >= ttl:
                    break
                node, keys, depth = child, child.keys, child.depth
                end = depth + len(keys)
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
        if count == 0:
            return ModalityTokens()
        # The shorter side is summed, by modality in C: the unmatched tail when the total is
        # known (a truncation at a full window leaves it as long as the request).
        if total is None or count <= len(segments) - count:
            sums = ModalityTokens(*map(sum, zip(*map(_tokens, segments[:count]), strict=True)))
        else:
            tail = zip(*map(_tokens, segments[count:]), strict=True)
            sums = total - ModalityTokens(*map(sum, tail))
        newest_first = (segments[n].tokens for n in range(count - 1, -1, -1))
        return _rounded(sums, newest_first, self.profile)

    def store(
        self,
        segments: Sequence[Segment],
        *,
        now: float,
        session: str,
        start: Sequence[_Node] = (),
    ) -> list[_Node]:
        """Record a served request (and its output, if cached) as a prefix used at `now`.

        Returns the node of each of its segments, in order: the cache's own list, kept
        current as nodes split (read it, slice it; do not change it). `start`: as for
        `matched` (their nodes are not looked up again).
        """
        scope = self._scope(session)
        tree = self._trees.get(scope)
        if tree is None:
            tree = self._trees[scope] = _Tree()
        old = tree.path
        count = len(start)
        if count and count <= len(old) and old[count - 1] is start[-1]:
            path, node = old[:count], start[-1]  # the usual case: the latest path resumed
        elif count:
            path, node = _known(tree.root, segments, count)
        else:
            path, node = [], tree.root
        total = len(segments)
        while count < total:
            end = node.depth + len(node.keys)
            if count < end:  # inside a run: follow it while the keys agree
                keys, depth, first = node.keys, node.depth, count
                stop = min(end, total)
                while count < stop:
                    known, key = keys[count - depth], segments[count].key
                    if known is not key and known != key:
                        break
                    count += 1
                path += [node] * (count - first)
                if count < stop:
                    tree.split(node, count)  # the request leaves the run here
                continue
            key = segments[count].key
            child = node.children.get(key)
            if child is None:
                # A new branch: first drop the expired ones beside it, so what no live request
                # can reach does not pile up (a branch point is where old prefixes end).
                children, ttl = node.children, self.profile.ttl_seconds
                stale = [k for k, c in children.items() if now - tree.used(c) >= ttl]
                for k in stale:
                    del children[k]
                rest = total - count
                child = children[key] = _Node([s.key for s in segments[count:]], count, now)
                path += [child] * rest
                node, count = child, total
            else:
                node = child
        if total < node.depth + len(node.keys):
            tree.split(node, total)  # the rest of the run keeps its own time
        # The previous path's nodes this one leaves behind keep that path's time. The paths
        # agree up to a point and never again (a tree): found by bisection.
        lo, hi = 0, min(len(path), len(old))
        while lo < hi:
            mid = (lo + hi) // 2
            if path[mid] is old[mid]:
                lo = mid + 1
            else:
                hi = mid
        while lo < len(old):
            left = old[lo]
            left.last_used = tree.time
            lo = left.depth + len(left.keys)
        tree.path, tree.time = path, now
        return path

    def copy(self) -> PromptCache:
        """An independent copy (iterative: paths are too deep for `copy.deepcopy`)."""
        other = PromptCache(self.profile)
        stack: list[tuple[_Tree, _Node, _Node]] = []
        for scope, tree in self._trees.items():
            twin = other._trees[scope] = _Tree()
            stack.append((tree, tree.root, twin.root))
        while stack:
            tree, node, twin_node = stack.pop()
            for key, child in node.children.items():
                # Runs are shared (never changed in place); the latest path's time is written
                # into the copy's nodes, whose own latest path starts empty.
                copied = _Node(child.keys, child.depth, tree.used(child))
                twin_node.children[key] = copied
                stack.append((tree, child, copied))
        return other

    def size(self) -> int:
        """How many segments are held, one per root besides (for memory checks)."""
        stack = [tree.root for tree in self._trees.values()]
        count = len(stack)
        while stack:
            node = stack.pop()
            count += len(node.keys)
            stack.extend(node.children.values())
        return count
