"""How good it is to put two cities in one cluster: a symmetric, non-negative matrix.

It is the partner score without the terms that only make sense for one pair (the graph
term, which would close clusters around existing ties, and the same-country penalty,
which the cluster constraints handle): reciprocal benefit, profile similarity, shared
languages and proximity. Dense up to ``DENSE_MAX`` cities; beyond that each city keeps
its ``k`` best candidates by profile similarity (plus its existing partners), so memory
grows with n * k instead of n^2.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.kernel.arrays import Matrix, NetworkArrays
from matching.kernel.features import pair_features
from matching.kernel.scores import CLUSTER_TERMS, PartnerWeights, score_components

DENSE_MAX = 3000
CELLS_PER_BLOCK = 20_000_000  # rows x cities x themes held at once by one feature block


def _block_scores(
    arr: NetworkArrays, emb: NDArray[np.float32], rows: NDArray[np.int64], weights: PartnerWeights
) -> NDArray[np.float64]:
    parts = score_components(pair_features(arr, emb, rows), arr.country_codes, weights)
    return np.asarray(sum(parts[t] for t in CLUSTER_TERMS))


def _block(arr: NetworkArrays) -> int:
    return max(1, min(256, CELLS_PER_BLOCK // max(1, arr.n * max(1, len(arr.theme_ids)))))


def affinity_matrix(
    arr: NetworkArrays,
    emb: NDArray[np.float32],
    *,
    weights: PartnerWeights = PartnerWeights(),
    k: int = 50,
) -> Matrix:
    """City x city affinity from profile vectors ``emb`` (one per city, in ``arr``'s order):
    dense up to ``DENSE_MAX`` cities, else sparse with ``k`` candidates per city."""
    n = arr.n
    if n <= DENSE_MAX:
        out = np.zeros((n, n))
        step = _block(arr)
        for start in range(0, n, step):
            rows = np.arange(start, min(n, start + step))
            out[rows] = _block_scores(arr, emb, rows, weights)
        out = (out + out.T) / 2.0  # exact symmetry against float noise
        np.fill_diagonal(out, 0.0)
        return np.clip(out, 0.0, None)
    return _sparse_affinity(arr, emb, weights, k)


def _sparse_affinity(
    arr: NetworkArrays, emb: NDArray[np.float32], weights: PartnerWeights, k: int
) -> sp.csr_matrix:
    n = arr.n
    rows_out, cols_out, vals_out = [], [], []
    ties = arr.ties.tocsr()
    step = _block(arr)
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        sim = emb[rows] @ emb.T if emb.size else np.zeros((len(rows), n), dtype=np.float32)
        sim[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-sim, min(k, n - 1) - 1, axis=1)[:, :k]
        scores = _block_scores(arr, emb, rows, weights)
        for r, i in enumerate(rows):
            cand = np.union1d(top[r], ties.indices[ties.indptr[i] : ties.indptr[i + 1]])
            cand = cand[cand != i]
            rows_out.append(np.full(len(cand), i))
            cols_out.append(cand)
            vals_out.append(np.clip(scores[r, cand], 0.0, None))
    m = sp.csr_matrix(
        (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(n, n),
    )
    return sp.csr_matrix(m.maximum(m.T))  # keep a pair if either side kept it
