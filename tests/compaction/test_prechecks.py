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


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32))
def test_filler_needs_no_verifying_encode(n: int, seed: int) -> None:
    text = text_with_tokens(n, np.random.default_rng(seed))
    assert len(get_encoding().encode_ordinary(text)) == n
    framed = text_with_tokens(n + 12, np.random.default_rng(seed), wrap=('{"q": "', '"}'))
    assert len(get_encoding().encode_ordinary(framed)) == n + 12
    assert frame_tokens("", '{"q": "', '"}') == len(get_encoding().encode_ordinary('{"q": "')) + 1
