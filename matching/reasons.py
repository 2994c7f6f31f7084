"""What every suggestion carries: reasons a person reads, with the numbers behind them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    """One plain-language reason.

    ``kind`` is a stable machine tag ("shared_theme", "complementary_strength",
    "language", "distance", "graph_proximity", ...); ``text`` is the sentence shown to
    people ("Both prioritise anti-rumours (5/5 and 4/5)"); ``weight`` is its share of
    the score it explains (0 when it is information rather than a score term).
    """

    kind: str
    text: str
    weight: float = 0.0
