"""Shortcuts that skip work must never change a result: checked against the long way."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from context_manager.compaction import summarizers as s
from context_manager.simulate.texts import frame_tokens, text_with_tokens
from context_manager.tokens import get_encoding

TEXT = st.text(alphabet="aZ Qb1 9.,;:-'Iu\nx", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=5))
def test_the_name_and_value_prechecks_change_nothing(sentences: list[str]) -> None:
    features = s.sentence_features(sentences)
    for row, sentence in zip(features, sentences, strict=True):
        said = s._LABEL.sub("", sentence, count=1)
        assert bool(row[2]) == bool(s._NAME.search(said))
    speakers = ["User"] * len(sentences)
    got = s.sentence_values(sentences, features, speakers)
    # The long way: every sentence's values looked for, digit or not.
    value = features @ s._WEIGHTS + 0.1
    seen: set[str] = set()
    for n, sentence in enumerate(sentences):
        said = s._LABEL.sub("", sentence, count=1).strip()
        row = features[n]
        value[n] *= 1.5
        words = len(said.split())
        if s._FILLER.match(said) and words <= 4:
            value[n] *= 0.2
        elif words <= 3 and not row[:2].any():
            value[n] *= 0.3
        if row[s._UPDATE_COLUMN] and not row[:3].any():
            value[n] -= 0.5 * s._WEIGHTS[s._UPDATE_COLUMN]
        found = set(s._VALUES.findall(said))
        if found and found <= seen and not row[s._UPDATE_COLUMN]:
            value[n] *= 0.4
        seen |= found
    assert np.array_equal(got, value)


def _features_the_long_way(sentences: list[str]) -> np.ndarray:
    """`sentence_features` as first written: each regular expression over the whole sentence."""
    out = np.zeros((len(sentences), len(s.FEATURES)))
    for row, labelled in enumerate(sentences):
        sentence = s._LABEL.sub("", labelled, count=1)
        if s._DIGIT.search(sentence):
            out[row, 0] = 1.0
            if s._CODE.search(sentence):
                out[row, 1] = 1.0
        if s._NAME.search(sentence):
            out[row, 2] = 1.0
        lowered = sentence.lower()
        words = set(s._LOWER_WORDS.findall(lowered))
        for column, single, phrases in s._KEYWORD_COLUMNS:
            if not words.isdisjoint(single) or any(p in lowered for p in phrases):
                out[row, column] = 1.0
    return out


# What the fast forms lean on: Unicode digits, letters and spaces; "_" (a word character that
# is no letter); hyphens inside codes; a Kelvin sign that lowers to ASCII "k"; a lone surrogate.
CHARS = list("aZ Qb1 9.,;:-'Iu\nx_\tÉß٣\u00a0\u2003İ\u212a!?") + ["\ud800"]
PIECES = [
    "User: ", "Assistant: ", "Tool call get_weather: ", "Tool result: ", "Note: ", "I", "I'm",
    "at most", "let's go", "don't forget", "now it", "is now", "allergic", "Actually",
    "QX-4471", "K7QX2P", "a1B", "_1A", "x-9Z", "7:45", "Alice", "Oslo, Bob", "e. Bob", "٣A",
]  # fmt: skip
tricky = st.lists(st.sampled_from(CHARS) | st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=1000, deadline=None)
@given(st.lists(tricky, min_size=1, max_size=4))
def test_the_fast_features_are_the_long_way(sentences: list[str]) -> None:
    assert np.array_equal(s.sentence_features(sentences), _features_the_long_way(sentences))


@settings(max_examples=1000, deadline=None)
@given(tricky)
def test_sentences_split_as_the_lookbehind_does(text: str) -> None:
    assert s.split_sentences(text) == [p for p in s._SENTENCE.split(text) if p]


def test_features_hand_checked() -> None:
    rows = s.sentence_features(
        [
            "User: My code is QX-4471, call Bob.",  # number, code, name
            "Assistant: I see.",  # the pronoun is no name
            "so 7 i-9z apples",  # a number, no code (no capital in its run), no name
            "please send it to Alice before Friday",  # name, constraint, task
            "actually it is now 5",  # number, update
        ]
    )
    assert rows.tolist() == [
        [1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 1, 0],
        [1, 0, 0, 0, 0, 0, 1],
    ]
    assert s.split_sentences("Hi there. My code is K7QX2P.  Ok!") == [
        "Hi there.",
        "My code is K7QX2P.",
        "Ok!",
    ]
    assert s.split_sentences("no marks at all") == ["no marks at all"]
    assert s.split_sentences("") == []


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32))
def test_filler_needs_no_verifying_encode(n: int, seed: int) -> None:
    text = text_with_tokens(n, np.random.default_rng(seed))
    assert len(get_encoding().encode_ordinary(text)) == n
    framed = text_with_tokens(n + 12, np.random.default_rng(seed), wrap=('{"q": "', '"}'))
    assert len(get_encoding().encode_ordinary(framed)) == n + 12
    assert frame_tokens("", '{"q": "', '"}') == len(get_encoding().encode_ordinary('{"q": "')) + 1
