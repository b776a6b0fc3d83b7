"""The benchmark's BM25, presence and normalization are the slow, plain versions', exactly."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi  # type: ignore[import-untyped]

from context_manager.bench.retrieval import CallTexts, entries, ranking
from context_manager.items import Message
from context_manager.simulate.facts import fact_presence, normalize
from context_manager.simulate.workloads import PlantedFact

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _regex_normalize(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()


@given(st.text())
def test_normalize_is_the_regular_expression_s(text: str) -> None:
    assert normalize(text) == _regex_normalize(text)


def _plain_answerable(texts, questions, probes, top=3):
    """Answerability as the benchmark first wrote it, on rank_bm25."""
    docs = [_regex_normalize(t) for t in texts if t]
    if not docs:
        return [False] * len(questions)
    bm25 = BM25Okapi([d.split() or [""] for d in docs])
    out = []
    for question, said in zip(questions, probes, strict=True):
        scores = bm25.get_scores(_regex_normalize(question).split())
        best = sorted(range(len(docs)), key=lambda n: -scores[n])[:top]
        wanted = [f" {_regex_normalize(p)} " for p in said]
        out.append(any(p in f" {docs[n]} " for n in best for p in wanted))
    return out


# Few words, so terms repeat across items (idfs below zero take the floor) and scores tie.
WORDS = ["the", "caller", "name", "is", "Ana", "QX-4471", "seat", "window", "what", "prefer",
         "phone", "555", "?", "okay", "É", ""]  # fmt: skip
TEXT = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
QUESTIONS = ["What is the caller's name?", "What does the caller prefer?", "phone phone 555"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), TEXT), max_size=25),
    st.lists(st.integers(0, 30), max_size=30),
    st.lists(TEXT, max_size=3),
    st.lists(st.sampled_from(WORDS[:-1]), min_size=3, max_size=3),
)
def test_answerable_and_presence_match_the_plain_versions(said, picks, made, values) -> None:
    items = [Message(role=r, text=t) for r, t in said]
    facts = [PlantedFact("name", 0, "x", (values[0],), (values[1],)),
             PlantedFact("preference", 0, "y", (values[2], values[0])),
             PlantedFact("updated", 0, "z", (values[1],), ())]  # fmt: skip
    texts = CallTexts.of(items, facts, QUESTIONS)
    # A final window: some of the call's items (in any order, repeats allowed) and made texts.
    final = [Message(role="system", text=t) for t in made]
    final += [items[p] for p in picks if p < len(items)]
    held = entries(texts, final)
    assert texts.answerable(held) == _plain_answerable(
        [m.text for m in final], QUESTIONS, [f.probes for f in facts]
    )
    assert texts.presence(held) == fact_presence(facts, final)
    # The scores bit for bit, and the whole ranking (ties: the earlier item first).
    norms, scores = texts.scores(held)
    docs = [_regex_normalize(m.text) for m in final if m.text]
    assert norms == docs
    if docs:
        bm25 = BM25Okapi([d.split() or [""] for d in docs])
        for question, score in zip(QUESTIONS, scores, strict=True):
            plain = bm25.get_scores(_regex_normalize(question).split())
            assert score.tolist() == plain.tolist()
            assert ranking(score, len(docs)) == sorted(range(len(docs)), key=lambda n: -plain[n])
    assert texts.answerable(held, top=1) == _plain_answerable(
        [m.text for m in final], QUESTIONS, [f.probes for f in facts], top=1
    )
