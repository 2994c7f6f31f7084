"""A partner ranker learned from the network's own ties, fitted once per data revision.

Why: a fixed blend of hand-set weights does no better than a one-line heuristic on real
twin-town networks, where who ties with whom depends on habits no weight guesses (German
towns twin with French ones, a town with partners in a country tends to get more there).
The network itself says what predicts a tie: hide some of its ties, learn which pair
features bring them back, and rank with that.

Fitting (``fit_ranker``): hide ``holdout`` of the ties at random (both ends keep a tie),
compute the pair features on the rest, and fit a conditional logit (a softmax over each
hidden tie's query: the real partner against 40 cities drawn uniformly, as a query meets
them; SciPy's L-BFGS) of which candidate is the partner. Coordinators' answers join as
labels: "interested" as partners, "not for us" as sure negatives; new partnerships are
ties. With fewer than ``MIN_TIES`` ties there is too little to learn from and
``fit_ranker`` returns None: the caller uses the default weights and says so.

Scoring (``LearnedRanker.scores``): every city is scored for the query city from both
sides (``i`` looking at ``j`` and ``j`` looking at ``i``) and the two utilities averaged,
so a pair only ranks high when it looks right from both ends. Each feature's share of
the utility is kept so reasons can name what really moved a score.

Features (all computed on the visible ties): resource allocation, Adamic-Adar and common
partners; 3-step paths; how often this network's cities of the query's country tie with
the candidate's country (both ways); the candidate's partners already in the query
city's country (both ways); partners near the other city (both ways: twinning runs between
regions); degrees; distance and same country; shared languages; size gap; the default
weights' own score; and, where the data has them, shared priorities, Index
complementarity and profile similarity. Features constant on a network (no themes, no
texts) are dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.kernel.arrays import FloatArray, IntArray, NetworkArrays, tie_edges
from matching.kernel.geometry import EARTH_RADIUS_KM, arc_km
from matching.kernel.scores import PartnerWeights
from matching.partners.holdout import holdout_split
from matching.partners.index import PartnerIndex, partner_index
from matching.partners.terms import _Columns, _columns, _Graph, _graph

NEAR_KM = 50.0
"""Scale of "near" for the regional features: weight exp(-km / NEAR_KM)."""
NEAR_CUTOFF_KM = 2_000.0
"""Past this a "near" weight is below exp(-40) = 4e-18, nothing at float64 beside the rest."""
_NEAR_H = float(np.sin(NEAR_CUTOFF_KM / (2 * EARTH_RADIUS_KM)) ** 2)  # the same, as a haversine
DEFAULT_WEIGHTS = PartnerWeights()
"""The default score's weights, read as one feature (and split back into reasons)."""
MIN_TIES = 500
"""Below this many ties the network is too small to learn from: default weights are used.
Measured: on the sample ICC network (247 ties, 49 hidden to learn from) the learned model
found 0.615 +- 0.026 of held-out ties in its top 10 against the default weights' 0.648 +-
0.028 (10 splits, seed 2026); on 15,433 Wikidata twin-town ties it found 0.222 against
0.182 (docs/performance.md)."""

FEATURES = (
    "resource_allocation",
    "adamic_adar",
    "common_partners",
    "three_step_paths",
    "country_habit",
    "country_habit_back",
    "partners_in_your_country",
    "your_partners_in_their_country",
    "degree",
    "degree_back",
    "distance",
    "same_country",
    "languages",
    "size_gap",
    "shared_priorities",
    "shared_priorities_back",
    "gain",
    "gain_back",
    "similarity",
    "any_common_partner",
    "partners_near_you",
    "your_partners_near_them",
    "default_score",
)
# each feature's counterpart seen from the other city (symmetric features map to themselves)
_SWAP = {
    "partners_near_you": "your_partners_near_them",
    "country_habit": "country_habit_back",
    "partners_in_your_country": "your_partners_in_their_country",
    "degree": "degree_back",
    "shared_priorities": "shared_priorities_back",
    "gain": "gain_back",
}
_SWAP.update({v: k for k, v in list(_SWAP.items())})
_MIRROR = np.array([FEATURES.index(_SWAP.get(f, f)) for f in FEATURES])


@dataclass(frozen=True, eq=False)
class TieContext:
    """What pair features need from the visible ties, laid out once per fit or revision."""

    arrays: NetworkArrays
    profiles: NDArray[np.float32]
    ties: sp.csr_matrix  # (n, n) 0/1
    ties_ra: sp.csr_matrix  # rows scaled by 1 / degree: resource allocation's weights
    degree: FloatArray
    country_counts: FloatArray  # (K, K): tie ends from country a's cities to country b's
    log_country_rate: FloatArray  # (K, K): log share of country a's ties going to b (smoothed)
    in_country: sp.csr_matrix  # (n, K): each city's partners per country
    in_country_by_country: sp.csc_matrix  # the same, by column
    index: PartnerIndex  # the fast column pass for the thematic and place terms
    log_pop: FloatArray  # NaN when unknown

    @staticmethod
    def build(
        arr: NetworkArrays, profiles: NDArray[np.float32], index: PartnerIndex | None = None
    ) -> TieContext:
        """``index``: the revision's partner index when the caller has built it already."""
        ties = sp.csr_matrix(arr.ties)
        degree = np.asarray(ties.sum(axis=1)).ravel()
        inv = np.where(degree > 0, 1.0 / np.maximum(degree, 1.0), 0.0)
        k = int(arr.country_codes.max(initial=-1)) + 1
        onehot = sp.csr_matrix(
            (np.ones(arr.n), (np.arange(arr.n), arr.country_codes)), shape=(arr.n, max(k, 1))
        )
        in_country = sp.csr_matrix(ties @ onehot)
        counts = np.asarray((onehot.T @ in_country).todense(), dtype=np.float64)
        # add-one smoothing toward the country's overall spread: an unseen pair is rare, not impossible
        rate = (counts + 0.1) / (counts.sum(axis=1, keepdims=True) + 0.1 * max(k, 1))
        pop = np.where(arr.population > 0, arr.population, np.nan)
        return TieContext(
            arrays=arr,
            profiles=profiles,
            ties=ties,
            ties_ra=sp.csr_matrix(sp.diags(inv) @ ties),
            degree=degree,
            country_counts=counts,
            log_country_rate=np.log(rate),
            in_country=in_country,
            in_country_by_country=sp.csc_matrix(in_country),
            index=index if index is not None else partner_index(arr, profiles),
            log_pop=np.log(pop),
        )

    def features(self, i: int, cols: IntArray | None = None) -> FloatArray:
        """(len(cols), len(FEATURES)): city ``i`` against ``cols`` (every city when None)."""
        return self.features_and_terms(i, cols)[0]

    def features_and_terms(
        self, i: int, cols: IntArray | None = None, graph: _Graph | None = None
    ) -> tuple[FloatArray, _Columns]:
        """The features, and the default score's terms they were read from (for reasons).

        The thematic, profile, language and distance terms come from the partner index's
        column pass (``terms._columns``, equal to ``pair_features`` and tested so), which
        reads only the columns asked for: a fit asks for ~40 per positive, not all n.
        ``graph``: ``i``'s neighbourhood when the caller has it (a query does)."""
        arr, ix = self.arrays, self.index
        every = cols is None
        at = np.arange(arr.n, dtype=np.int64) if cols is None else np.asarray(cols, np.int64)
        m = len(at)
        row = self.ties[i]
        near = graph if graph is not None else _graph(ix, i)
        c = _columns(ix, i, at, None, near, DEFAULT_WEIGHTS)
        two = row @ self.ties
        ra = (row @ self.ties_ra).toarray().ravel()
        three = (two @ self.ties).toarray().ravel() if two.nnz else np.zeros(arr.n)
        codes = arr.country_codes[at]
        ci = int(arr.country_codes[i])
        out = np.empty((m, len(FEATURES)))
        out[:, 0] = ra if every else ra[at]
        out[:, 1] = c.adamic_adar
        out[:, 2] = np.log1p(c.common)
        out[:, 3] = np.log1p(three if every else three[at])
        out[:, 4] = self.log_country_rate[ci, codes]
        out[:, 5] = self.log_country_rate[codes, ci]
        there = self.in_country_by_country[:, ci].toarray().ravel()
        out[:, 6] = np.log1p(there if every else there[at])
        out[:, 7] = np.log1p(self.in_country[i].toarray().ravel()[codes])
        out[:, 8] = np.log1p(self.degree[at])
        out[:, 9] = np.log1p(self.degree[i])
        out[:, 10] = np.log1p(np.nan_to_num(c.distance_km, nan=20_000.0) / 100.0)
        out[:, 11] = codes == ci
        out[:, 12] = np.minimum(c.languages, 2) / 2.0
        out[:, 13] = np.nan_to_num(np.abs(self.log_pop[at] - self.log_pop[i]), nan=0.0)
        out[:, 14] = c.shared
        out[:, 15] = c.shared_back
        out[:, 16] = c.gain
        out[:, 17] = c.gain_back
        out[:, 18] = np.clip(c.similarity, 0.0, 1.0)
        out[:, 19] = c.common > 0
        # twinning runs between regions: a candidate tied to places near you (and you to
        # places near it) is a likely partner even with no partner in common
        near_i = np.exp(-np.nan_to_num(arc_km((1.0 - ix.xyz @ ix.xyz[i]) / 2), nan=1e9) / NEAR_KM)
        tied_near = self.ties @ near_i
        out[:, 20] = np.log1p(tied_near if every else tied_near[at])
        mine = row.indices
        if len(mine):
            # only pairs within NEAR_CUTOFF_KM add a term above 1e-17: the rest are skipped
            # (a city without coordinates has NaN here, no term, as before)
            h = (1.0 - (ix.xyz if every else ix.xyz[at]) @ ix.xyz[mine].T) / 2
            rows, cols_ = np.nonzero(h < _NEAR_H)
            terms_near = np.exp(-arc_km(h[rows, cols_]) / NEAR_KM)
            out[:, 21] = np.log1p(np.bincount(rows, weights=terms_near, minlength=m))
        else:
            out[:, 21] = 0.0
        # the default weights' own score: what the hand-set model says, for the fit to
        # lean on where the network has few ties to learn from
        out[:, 22] = c.score
        return out, c


@dataclass(frozen=True, eq=False)
class LearnedRanker:
    """A fitted model: per-feature weights on standardised features, and how it was made."""

    used: tuple[str, ...]  # features kept (not constant on this network)
    mean: FloatArray
    scale: FloatArray
    coef: FloatArray  # on standardised two-sided features, in ``used`` order
    ties_learned_from: int  # hidden ties used as positives
    answers_learned_from: int
    negatives: int
    fit_seconds: float
    seed: int
    _cols: IntArray = field(repr=False)
    _mirror: IntArray = field(repr=False)

    def weights(self) -> dict[str, float]:
        return {name: round(float(w), 4) for name, w in zip(self.used, self.coef, strict=True)}

    def contributions(self, x: FloatArray) -> FloatArray:
        """(m, len(used)): each feature's part of the two-sided utility for rows of ``x``."""
        z = (x[:, self._cols] - self.mean) / self.scale
        back = (x[:, self._mirror] - self.mean) / self.scale
        return (z + back) * (self.coef / 2.0)

    def scores(self, x: FloatArray) -> FloatArray:
        """The two-sided utility of every row of ``x`` (features from ``TieContext.features``):
        higher is a likelier partner; differences are log-odds between candidates."""
        w = self.coef / (2.0 * self.scale)
        # the same sum as one matrix-vector product: each column's weight from both sides
        per_column = np.zeros(x.shape[1])
        np.add.at(per_column, self._cols, w)
        np.add.at(per_column, self._mirror, w)
        return np.asarray(x @ per_column - 2.0 * float(self.mean @ w))


def _conditional_logit(blocks: list[FloatArray], l2: float) -> FloatArray:
    """Weights ``w`` maximising sum over blocks of log softmax(block @ w)[0]: in each block
    row 0 is a real partner and the others are candidates drawn uniformly, so the model
    learns what makes the partner stand out among the cities a query ranks (McFadden's
    conditional logit; uniform sampling of the alternatives keeps it consistent). Fitted
    with SciPy's L-BFGS on the exact gradient."""
    sizes = np.array([len(b) for b in blocks])
    X = np.vstack(blocks)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lam = l2 * len(blocks)

    def loss(w: FloatArray) -> tuple[float, FloatArray]:
        s = X @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - np.repeat(top, sizes))
        total = np.add.reduceat(e, starts)
        value = -(s[starts] - top - np.log(total)).sum() + lam * float(w @ w)
        p = e / np.repeat(total, sizes)
        grad = (p @ X) - X[starts].sum(axis=0) + 2 * lam * w
        return float(value), np.asarray(grad)

    from scipy.optimize import minimize  # 0.3 s to import: only when a model is fitted

    result = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def fit_ranker(
    arr: NetworkArrays,
    profiles: NDArray[np.float32],
    *,
    answers: tuple[tuple[int, int, bool], ...] = (),
    holdout: float = 0.2,
    max_positives: int = 3000,
    negatives_per_positive: int = 40,
    l2: float = 0.3,
    seed: int = 0,
) -> LearnedRanker | None:
    """Learn the ranker from ``arr``'s ties (and ``answers``: (city, other, interested));
    None when the network has fewer than ``MIN_TIES`` ties. Same data and seed, same model.

    ``l2`` (per positive) was chosen on two tuning splits of the Wikidata twin towns
    (seeds 0 and 100 of ``evaluate_partners``), never on the reported ones: 1e-3 let the
    collinear graph features (resource allocation, Adamic-Adar, common partners) trade
    weight and lost a quarter of the hits with a common partner; 0.3 was best of
    1e-3..1 on both.

    Negatives are drawn uniformly from every city, as a query meets them: on real
    twin-town ties, adding "hard" negatives two steps away taught the model to distrust
    common partners (hits@10 with a common neighbour fell from 0.69 to 0.27), and a
    pointwise logistic regression or LightGBM's LambdaRank on the same rows ranked worse
    than this softmax over each query's candidates (docs/performance.md)."""
    started = time.perf_counter()
    edges = tie_edges(arr)
    if len(edges) < MIN_TIES:
        return None
    split = holdout_split(arr, holdout, seed)
    rng = np.random.default_rng(seed)
    hidden = split.hidden
    if len(hidden) > max_positives:
        hidden = hidden[np.sort(rng.choice(len(hidden), max_positives, replace=False))]
    ctx = TieContext.build(split.visible, profiles)
    tied = arr.ties
    # each positive seen from a random end; answers from the city that gave them
    flip = rng.random(len(hidden)) < 0.5
    src = np.where(flip, hidden[:, 1], hidden[:, 0])
    dst = np.where(flip, hidden[:, 0], hidden[:, 1])
    queries: dict[int, tuple[list[int], list[int]]] = {}
    for a, b in zip(src.tolist(), dst.tolist(), strict=True):
        queries.setdefault(a, ([], []))[0].append(b)
    for a, b, interested in answers:
        queries.setdefault(a, ([], []))[0 if interested else 1].append(b)
    rows_x: list[FloatArray] = []
    plan: list[tuple[int, int, int]] = []  # (first positive row, positives, negatives)
    n_neg = 0
    for a in sorted(queries):
        positives, refused = queries[a]
        if not positives:
            continue
        free = tied[a].toarray().ravel() == 0
        free[a] = False
        pool = rng.integers(0, arr.n, size=negatives_per_positive * len(positives))
        negatives = refused + pool[free[pool]].tolist()  # "not for us": sure negatives
        at = sum(len(r) for r in rows_x)
        rows_x.append(ctx.features(a, np.array(positives + negatives, dtype=np.int64)))
        plan.append((at, len(positives), len(negatives)))
        n_neg += len(negatives)
    X = np.vstack(rows_x)
    both = np.vstack([X, X[:, _MIRROR]])
    sd = both.std(axis=0)
    keep = np.flatnonzero(sd > 1e-9)
    keep = np.array([c for c in keep if sd[_MIRROR[c]] > 1e-9], dtype=np.int64)
    mirror_cols = _MIRROR[keep]
    mean = both[:, keep].mean(axis=0)
    scale = sd[keep]
    S = ((X[:, keep] - mean) / scale + (X[:, mirror_cols] - mean) / scale) / 2.0
    blocks = [
        np.vstack([S[at + p][None, :], S[at + npos : at + npos + nneg]])
        for at, npos, nneg in plan
        for p in range(npos)
    ]
    coef = _conditional_logit(blocks, l2)
    return LearnedRanker(
        used=tuple(FEATURES[c] for c in keep),
        mean=mean,
        scale=scale,
        coef=coef,
        ties_learned_from=len(hidden),
        answers_learned_from=len(answers),
        negatives=n_neg,
        fit_seconds=round(time.perf_counter() - started, 3),
        seed=seed,
        _cols=keep,
        _mirror=mirror_cols.astype(np.int64),
    )
