"""Partner suggestions for a city: reciprocal, filtered, diverse, each with its reasons.

inputs: ``model`` (filters, suggestions) and ``index`` (the per-revision layout);
solve: ``terms`` (score terms for chosen candidates) and ``suggest`` (the bounded search
and the diversity re-rank); report: ``report`` (reasons in words).
"""

from matching.kernel.scores import PartnerWeights, score_components, total_score
from matching.partners.index import PartnerIndex, cached_partner_index, partner_index
from matching.partners.model import (
    PartnerFilters,
    PartnerResult,
    PartnerSuggestion,
    UnknownCity,
)
from matching.partners.suggest import suggest_partners

__all__ = [
    "PartnerFilters",
    "PartnerIndex",
    "PartnerResult",
    "PartnerSuggestion",
    "PartnerWeights",
    "UnknownCity",
    "cached_partner_index",
    "partner_index",
    "score_components",
    "suggest_partners",
    "total_score",
]
