"""A response's record is built once: the same record as the unpredicted one with the figures."""

from __future__ import annotations

from dataclasses import replace

from context_manager.live.records import outcome_of, read_usage, reported_status, unpredicted
from context_manager.profiles import get_model_profile
from context_manager.server import Cost, Usage
from context_manager.tokens import ModalityTokens

PRICES = get_model_profile("gpt-realtime").prices_per_million
DONE = {
    "id": "resp_1",
    "metadata": {"turn": 3},
    "usage": {"input_tokens": 120, "output_tokens": 30,
              "input_token_details": {"text_tokens": 100, "audio_tokens": 20, "cached_tokens": 64},
              "output_token_details": {"text_tokens": 10, "audio_tokens": 20}},
}  # fmt: skip


def test_the_record_with_figures_is_the_unpredicted_one_replaced() -> None:
    observed, readable = read_usage(DONE)
    predicted = Usage(input=ModalityTokens(100, 20), cached=ModalityTokens(64),
                      output=ModalityTokens(10, 20))  # fmt: skip
    figures = {"response": 4, "in_band": True, "modelled": True, "predicted": predicted,
               "predicted_cost": Cost(text=1.0), "compared": True, "items": 9,
               "dropped": ("a",)}  # fmt: skip
    base, _ = unpredicted(DONE, session=2, prices=PRICES)
    built = outcome_of(DONE, session=2, prices=PRICES, observed=observed, **figures)
    assert built == replace(base, **figures)
    assert readable and observed == predicted  # 64 cached tokens, no details: text
    assert (built.response_id, built.status, built.metadata) == ("resp_1", "completed",
                                                                  {"turn": "3"})  # fmt: skip
    # Without figures: unpredicted, its predicted cost the price of nothing.
    assert outcome_of(DONE, session=2, prices=PRICES, observed=observed) == base
    assert base.predicted_cost == Cost() and base.response == -1 and not base.in_band


def test_an_unreadable_usage_reads_as_zero() -> None:
    observed, readable = read_usage({"usage": {"input_tokens": -1}, "status": "failed"})
    assert not readable and observed.total_tokens == 0
    assert reported_status({"status": "failed"}) == "failed"
    assert reported_status({"status": None}) == "completed"
