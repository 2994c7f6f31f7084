"""The pair score shared by partner suggestions and cluster affinity.

For cities i and j, from their ``PairFeatures``:

    benefit(i <- j) = shared * shared(i, j) + gain * gain(i <- j)
    reciprocal      = 2 * b_ij * b_ji / (b_ij + b_ji)        (harmonic mean: both must gain)
    score           = reciprocal + similarity * max(cos, 0) + language * min(shared langs, 2) / 2
                      + proximity * exp(-km / PROXIMITY_KM) + graph * log(1 + adamic_adar)
                      + same_country * [same country]

Partners use every term; cluster affinity (``matching.clusters.affinity``) keeps the terms
that make sense for a group (``CLUSTER_TERMS``), so both read one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.features import PairFeatures

PROXIMITY_KM = 1500.0
"""Distance at which the proximity term has fallen to 1/e."""

CLUSTER_TERMS = ("reciprocal_benefit", "similarity", "language", "proximity")
"""The terms cluster affinity keeps: the graph term would close clusters around existing
ties, and the cluster rules handle countries."""


@dataclass(frozen=True, slots=True)
class PartnerWeights:
    shared: float = 0.35
    gain: float = 0.25
    similarity: float = 0.20
    language: float = 0.10
    proximity: float = 0.10
    graph: float = 1.0
    same_country: float = -0.20
    graph_with_theme: float = 0.25
    """With a theme asked for, the thematic terms lead: the graph weight is scaled by this."""


def score_components(
    f: PairFeatures, countries: NDArray[np.int64], w: PartnerWeights = PartnerWeights()
) -> dict[str, NDArray[np.float64]]:
    """The score's terms for every pair of a feature block (same shapes as the features)."""
    b_ij = w.shared * f.shared + w.gain * f.gain
    b_ji = w.shared * f.shared_back + w.gain * f.gain_back
    total = np.maximum(b_ij + b_ji, 1e-12)
    reciprocal = np.where(b_ij + b_ji > 0, 2 * b_ij * b_ji / total, 0.0)
    country = countries
    return {
        "reciprocal_benefit": reciprocal,
        "similarity": w.similarity * np.clip(f.similarity, 0.0, 1.0),
        "language": w.language * np.minimum(f.languages, 2) / 2.0,
        "proximity": w.proximity * np.exp(-f.distance_km / PROXIMITY_KM),
        "graph": w.graph * np.log1p(f.adamic_adar),
        "same_country": w.same_country * (country[f.rows][:, None] == country[None, :]),
    }


def total_score(
    f: PairFeatures, countries: NDArray[np.int64], w: PartnerWeights = PartnerWeights()
) -> NDArray[np.float64]:
    return np.asarray(sum(score_components(f, countries, w).values()))
