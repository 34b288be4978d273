"""What M2-her tokens cost: the one formula behind ``troupe_cost_usd_total`` and ``/usage``.

>>> Prices(input_per_million=0.30, output_per_million=1.20).cost_usd(1000, 500, 1500)
0.0009
>>> billed_tokens(prompt=0, completion=0, total=221)
(221, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prices", "billed_tokens"]

_PER_MILLION = 1_000_000


def billed_tokens(prompt: int, completion: int, total: int) -> tuple[int, int]:
    """The input and output tokens that ``prompt``, ``completion`` and ``total`` stand for.

    M2-her streams often report only ``total`` (``docs/m2her-api.md``: the doc example has
    no split); the part of ``total`` that ``prompt`` and ``completion`` don't explain counts
    as input, the cheaper side, so an estimate never overstates.
    """
    return max(prompt, 0) + max(total - prompt - completion, 0), max(completion, 0)


@dataclass(frozen=True, slots=True)
class Prices:
    """US dollars per million tokens (third-party figures for M2-her; keep them current)."""

    input_per_million: float = 0.30
    output_per_million: float = 1.20

    def cost_usd(self, prompt: int, completion: int, total: int) -> float:
        """The estimated cost of tokens reported as ``prompt``, ``completion`` and ``total``."""
        tokens_in, tokens_out = billed_tokens(prompt, completion, total)
        return (
            tokens_in * self.input_per_million + tokens_out * self.output_per_million
        ) / _PER_MILLION
