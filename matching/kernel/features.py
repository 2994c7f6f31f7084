"""Pair features, vectorised with numpy over a block of source cities against all cities.

For sources ``rows`` and every city j (columns), each feature is a (len(rows), n) array:

- ``shared``: how much of the source's priorities the other city shares,
  sum_t min(p_it, p_jt) / sum_t p_it (0..1; with a theme, min(p_it, p_jt) / 5 on it);
- ``gain``: complementarity for the source: where it cares (p_it / 5) and is weaker,
  how much stronger j is on the Index, sum_t w_it * max(0, s_jt - s_it) / 100 / sum_t w_it,
  plus a bonus when j has a good practice on the theme; ``gain_back`` is the same for j;
- ``similarity``: cosine of the profile embeddings (description, priorities, practices);
- ``languages``: number of shared working languages;
- ``distance_km``: great-circle distance;
- ``tied``: an existing partnership; ``common``: common neighbours; ``adamic_adar``:
  sum over common neighbours of 1 / log(degree) (Adamic & Adar 2003);
- ``size_ratio``: smaller population over larger (NaN when unknown);
- ``mixed``: one international and one national-network member.

Partners use one source row; clusters use every row in blocks (``affinity_matrix``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.kernel.arrays import NetworkArrays
from matching.kernel.geometry import haversine_km

F = NDArray[np.float64]
PRACTICE_BONUS = 0.15  # a good practice on a theme is worth this much extra gain


@dataclass(frozen=True, eq=False)
class PairFeatures:
    rows: NDArray[np.int64]
    shared: F
    shared_back: F
    gain: F
    gain_back: F
    similarity: F
    languages: NDArray[np.int64]
    distance_km: F
    tied: NDArray[np.bool_]
    common: F
    adamic_adar: F
    size_ratio: F
    mixed: NDArray[np.bool_]


def _gain(arr: NetworkArrays, a: NDArray[np.int64], b: NDArray[np.int64], theme: int | None) -> F:
    """(len(a), len(b)): what each city in ``a`` gains from each city in ``b``.

    Weighted by how much ``a`` cares about each theme (its priority, or only the requested
    theme); only themes where both Index scores are known count; a good practice of ``b``
    on a theme adds ``PRACTICE_BONUS``.
    """
    if theme is None:
        care = arr.priority[a].astype(np.float64) / 5.0
    else:
        care = np.zeros((len(a), arr.priority.shape[1]))
        care[:, theme] = 1.0
    sa, sb = arr.strength[a], arr.strength[b]
    diff = np.clip(sb[None, :, :] - sa[:, None, :], 0.0, None) / 100.0
    diff = np.nan_to_num(diff, nan=0.0)  # unknown scores give no evidence either way
    bonus = PRACTICE_BONUS * (arr.practices[b] > 0)
    gain = (care[:, None, :] * (diff + bonus[None, :, :])).sum(axis=2)
    return np.asarray(gain / np.maximum(care.sum(axis=1), 1e-9)[:, None])


def pair_features(
    arr: NetworkArrays,
    embeddings: NDArray[np.float32],
    rows: NDArray[np.int64],
    theme: int | None = None,
) -> PairFeatures:
    rows = np.asarray(rows, dtype=np.int64)
    pri = arr.priority.astype(np.float64)
    inter = np.minimum(pri[rows][:, None, :], pri[None, :, :]).sum(axis=2)
    # what the others get back is judged on everything they care about, theme or not:
    # a partnership on one theme should still be worth it for both
    shared_back = inter / np.maximum(pri.sum(axis=1), 1.0)[None, :]
    every = np.arange(arr.n)
    gain_back = _gain(arr, every, rows, None).T
    if theme is None:
        shared = inter / np.maximum(pri[rows].sum(axis=1), 1.0)[:, None]
    else:
        # asking about a theme counts as caring about it (at least 3/5)
        asked = np.maximum(pri[rows, theme], 3.0)
        shared = (asked[:, None] / 5.0) * (pri[None, :, theme] / 5.0)
    gain = _gain(arr, rows, every, theme)
    if embeddings.size:
        similarity = np.asarray(embeddings[rows] @ embeddings.T, dtype=np.float64)
    else:
        similarity = np.zeros((len(rows), arr.n))
    lang = arr.languages.astype(np.int64)
    languages = lang[rows] @ lang.T
    dist = haversine_km(
        arr.lat[rows][:, None], arr.lon[rows][:, None], arr.lat[None, :], arr.lon[None, :]
    )
    ties = arr.ties
    sub = ties[rows]
    tied = sub.toarray() > 0
    common = (sub @ ties).toarray()
    adamic_adar = (sub @ arr.ties_aa).toarray()
    pop = arr.population
    size_ratio = np.minimum(pop[rows][:, None], pop[None, :]) / np.maximum(
        pop[rows][:, None], pop[None, :]
    )
    mixed = arr.national[rows][:, None] != arr.national[None, :]
    return PairFeatures(
        rows=rows,
        shared=shared,
        shared_back=shared_back,
        gain=gain,
        gain_back=gain_back,
        similarity=similarity,
        languages=languages,
        distance_km=dist,
        tied=tied,
        common=common,
        adamic_adar=adamic_adar,
        size_ratio=size_ratio,
        mixed=mixed,
    )
