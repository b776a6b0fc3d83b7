"""What a response costs: one price rule for every part of the library.

Per modality: (input − cached) × input price + cached × cached price + output × output price,
with the profile's prices in US dollars per million tokens (DESIGN.md, "Cost").

>>> from context_manager.profiles import get_model_profile
>>> from context_manager.tokens import ModalityTokens as M
>>> cost = price(Usage(input=M(1000, 2000), cached=M(0, 1000), output=M(100, 500)),
...              get_model_profile("gpt-realtime").prices_per_million)
>>> round(cost.total, 6)  # text 1000*4 + 100*16; audio 1000*32 + 1000*0.4 + 500*64
0.07
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from ..profiles import Prices
from .usage import Usage

__all__ = ["Cost", "price", "seed_cost"]


@dataclass(frozen=True, slots=True)
class Cost:
    """US dollars by modality."""

    text: float = 0.0
    audio: float = 0.0
    image: float = 0.0

    @property
    def total(self) -> float:
        """All modalities."""
        return self.text + self.audio + self.image

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.text + other.text, self.audio + other.audio, self.image + other.image)


def price(usage: Usage, prices: Prices) -> Cost:
    """The cost of one response's usage."""
    i, c, o = usage.input, usage.cached, usage.output
    text = (i.text - c.text) * prices.text_input + c.text * prices.text_cached
    text += o.text * prices.text_output
    audio = (i.audio - c.audio) * prices.audio_input + c.audio * prices.audio_cached
    audio += o.audio * prices.audio_output
    image = (i.image - c.image) * prices.image_input + c.image * prices.image_cached
    return Cost(text / 1e6, audio / 1e6, image / 1e6)


@overload
def seed_cost(tokens: float, prices: Prices) -> float: ...
@overload
def seed_cost(tokens: NDArray[Any], prices: Prices) -> NDArray[np.float64]: ...


def seed_cost(tokens: float | NDArray[Any], prices: Prices) -> float | NDArray[np.float64]:
    """What re-sending `tokens` of text into a new session costs (a rollover seed).

    The seed is uncached text input of the new session's first request, priced as `price`
    prices it; `tokens` may be an array (the vectorized simulator's calls at once).
    """
    return tokens * prices.text_input / 1e6
