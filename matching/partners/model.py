"""What a partner query asks and returns: filters in, ranked suggestions with reasons out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from graph.errors import NotFound
from matching.kernel.wording import Reason

F = NDArray[np.float64]

DIVERSITY = 0.85
EXPOSURE_NATIONAL = 0.05
EXPOSURE_SMALL = 0.05
SMALL_CITY = 100_000


class UnknownCity(NotFound, ValueError):
    """A partner query names a city the network does not have."""


@dataclass(frozen=True, slots=True)
class PartnerFilters:
    theme: str | None = None
    """Only cities that prioritise the theme, are strong in it (Index >= 60) or have a practice on it."""
    languages: tuple[str, ...] = ()
    """Only cities speaking at least one of these (ISO 639-1): "the partner speaks X"."""
    shared_language: bool = False
    """Only cities sharing a working language with the city asking: "we can talk without an
    interpreter" (not applied when the city asking lists no language). The API, the CLI
    and the page ask for it unless interpretation is allowed; off here, so that measuring
    the ranker (``evaluate``) sees every city."""
    max_distance_km: float | None = None
    membership: Literal["international", "national"] | None = None
    exclude_current: bool = True
    """Leave out cities that are partners already."""
    forced: tuple[str, ...] = ()
    """Always listed (after the ranked ones if they would not make the cut)."""
    forbidden: tuple[str, ...] = ()
    """Never listed."""


@dataclass(frozen=True, slots=True)
class SuggestedBefore:
    """When a partner was suggested to the city before (``memory``)."""

    first_on: str
    last_on: str
    rank: int
    """Its rank the last time it was suggested."""
    times: int
    answer: str | None = None
    """The city's answer: "interested", "not_for_us", or None (no answer yet)."""


@dataclass(frozen=True, slots=True)
class PartnerSuggestion:
    city_id: str
    name: str
    country: str
    score: float
    reasons: tuple[Reason, ...]
    components: dict[str, float] = field(hash=False)
    forced: bool = False
    suggested_before: SuggestedBefore | None = None
    """Set when this partner was suggested to the city before (and the list marks it)."""


@dataclass(frozen=True, slots=True)
class PartnerResult:
    city_id: str
    suggestions: tuple[PartnerSuggestion, ...]
    considered: int
    """Cities that passed the filters."""
    ranker: str = "default weights"
    """Which ranking made the list: "learned from N hidden ties of this network", or the
    default weights and why (too few ties to learn from)."""
    hidden_as_suggested: int = 0
    """Partners suggested to the city before and left out of this list (``again="hide"``)."""
