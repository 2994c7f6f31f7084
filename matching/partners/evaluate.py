"""Partner suggestions measured on the network itself: hide some ties, ask for them back.

A score model is only worth what it recovers on real ties, so the product evaluates
itself on whatever network it is given (link prediction, as in Liben-Nowell & Kleinberg
2007): each split hides a share of the ties, every method is fitted on the visible rest,
and each hidden tie is asked for from both of its ends.

inputs: ``holdout_split`` (which ties to hide; both ends keep a visible tie, so neither
city becomes a stranger the methods know nothing about) and ``Method`` (anything that,
fitted once per split, scores every city for a query city: iccmatch's default weights,
graph and distance baselines, random order, a learned ranker);
solve: ``evaluate_partners`` ranks each hidden partner among the query city's candidates
(every city but itself and its visible partners; ties in score count pessimistically half);
report: ``PartnerEvaluation``, hits@k and mean reciprocal rank with standard errors, for
all held-out pairs and separately for pairs with and without a common neighbour in the
visible graph (where graph methods have evidence, and where they have none).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graph.errors import InvalidInput
from matching.kernel.arrays import (
    BoolArray,
    FloatArray,
    IntArray,
    NetworkArrays,
    tie_edges,
)
from matching.kernel.features import pair_features
from matching.kernel.geometry import EARTH_RADIUS_KM, haversine_km
from matching.kernel.scores import PartnerWeights, total_score
from matching.partners.holdout import Holdout, hidden_per_split, holdout_split
from matching.partners.learn import TieContext, fit_ranker

Scorer = Callable[[int], FloatArray]
"""A fitted method: the scores of all n cities (higher is better) for query city ``i``."""

GROUPS = ("overall", "with_common_neighbour", "without_common_neighbour")
"""The held-out pairs each method is reported on, in ``MethodEvaluation`` field names."""


class Method(Protocol):
    """A way to rank partners, fitted once per split on the visible network."""

    @property
    def name(self) -> str: ...

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer: ...


# --- methods ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DefaultWeights:
    """iccmatch's score model as it ranks partners today (``total_score`` of the pair
    features, every term, no filters and no diversity re-rank)."""

    weights: PartnerWeights = field(default_factory=PartnerWeights)
    name: str = "default weights"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        def scores(i: int) -> FloatArray:
            f = pair_features(visible, profiles, np.array([i], dtype=np.int64))
            return np.asarray(total_score(f, visible.country_codes, self.weights)[0])

        return scores


def _neighbour_sums(ties: sp.csr_matrix, weighted: sp.csr_matrix) -> Scorer:
    """Scores ``sum_z A[i, z] * W[z, j]``: common neighbours weighted by ``W``'s rows."""

    def scores(i: int) -> FloatArray:
        return np.asarray((ties[i] @ weighted).toarray()[0], dtype=np.float64)

    return scores


@dataclass(frozen=True, slots=True)
class AdamicAdar:
    """Common neighbours, each weighing 1 / log(its degree) (Adamic & Adar 2003)."""

    name: str = "Adamic-Adar"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        return _neighbour_sums(visible.ties, visible.ties_aa)


@dataclass(frozen=True, slots=True)
class ResourceAllocation:
    """Common neighbours, each weighing 1 / its degree (Zhou, Lü & Zhang 2009)."""

    name: str = "resource allocation"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        degree = np.asarray(visible.ties.sum(axis=1)).ravel()
        inverse = np.where(degree > 0, 1.0 / np.maximum(degree, 1.0), 0.0)
        return _neighbour_sums(visible.ties, sp.csr_matrix(sp.diags(inverse) @ visible.ties))


SAME_COUNTRY_PENALTY_KM = 2 * math.pi * EARTH_RADIUS_KM
"""Added to the distance of same-country cities: farther than any foreign city can be."""


@dataclass(frozen=True, slots=True)
class NearestForeignCity:
    """The nearest cities of another country first (twin towns are mostly abroad), then
    the cities of the same country, each by great-circle distance; unknown places last."""

    name: str = "nearest foreign city"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        lat, lon, country = visible.lat, visible.lon, visible.country_codes

        def scores(i: int) -> FloatArray:
            km = haversine_km(lat[i], lon[i], lat, lon)
            km = km + SAME_COUNTRY_PENALTY_KM * (country == country[i])
            return np.where(np.isnan(km), -np.inf, -km)

        return scores


@dataclass(frozen=True, slots=True)
class RandomOrder:
    """Every city in a random order (seeded): the floor any method must clear."""

    seed: int = 0
    name: str = "random"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        # a different order on each split, the same for the same split and seed
        split = zlib.crc32(np.ascontiguousarray(visible.ties.indices).tobytes())
        n = visible.n

        def scores(i: int) -> FloatArray:
            return np.random.default_rng([self.seed, split, i]).random(n)

        return scores


@dataclass(frozen=True, slots=True)
class LearnedMethod:
    """The ranker learned from the visible ties (``matching.partners.learn``); on a network
    with too few ties it falls back to the default weights, as the product does."""

    seed: int = 0
    name: str = "learned"

    def fit(self, visible: NetworkArrays, profiles: NDArray[np.float32]) -> Scorer:
        model = fit_ranker(visible, profiles, seed=self.seed)
        if model is None:
            return DefaultWeights().fit(visible, profiles)
        ctx = TieContext.build(visible, profiles)

        def scores(i: int) -> FloatArray:
            return model.scores(ctx.features(i))

        return scores


def standard_methods(seed: int = 0) -> list[Method]:
    """iccmatch's default weights and the baselines it must beat, in report order."""
    return [
        DefaultWeights(),
        AdamicAdar(),
        ResourceAllocation(),
        NearestForeignCity(),
        RandomOrder(seed),
        LearnedMethod(seed),
    ]


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    """Hits@k and MRR over a group of held-out pairs (a pair's value is the mean of its two
    directions); standard errors of the mean over the pairs. None where undefined (no
    pairs, or one pair for a standard error)."""

    pairs: int
    hits_at_k: float | None
    hits_at_k_se: float | None
    mrr: float | None
    mrr_se: float | None


@dataclass(frozen=True, slots=True)
class MethodEvaluation:
    name: str
    overall: Scores
    with_common_neighbour: Scores
    without_common_neighbour: Scores
    fit_s: float
    """Seconds spent fitting, all splits together."""
    query_ms: float
    """Mean milliseconds per query city's score row."""


@dataclass(frozen=True, slots=True)
class PartnerEvaluation:
    cities: int
    ties: int
    holdout: float
    splits: int
    k: int
    seed: int
    pairs: int
    """Held-out pairs, all splits together; each is asked for from both ends."""
    pairs_with_common_neighbour: int
    pairs_without_common_neighbour: int
    methods: tuple[MethodEvaluation, ...]

    def method(self, name: str) -> MethodEvaluation:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


def _mean_se(values: FloatArray) -> tuple[float | None, float | None]:
    if len(values) == 0:
        return None, None
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    return mean, float(values.std(ddof=1) / math.sqrt(len(values)))


def _scores(hits: FloatArray, rr: FloatArray) -> Scores:
    h, h_se = _mean_se(hits)
    r, r_se = _mean_se(rr)
    return Scores(len(hits), h, h_se, r, r_se)


def _rank(scores: FloatArray, candidates: BoolArray, target: int) -> int:
    """1-based rank of ``target`` among the candidates: those scoring strictly higher,
    plus half (rounded down) of those scoring the same."""
    pool = scores[candidates]
    mine = scores[target]
    higher = int((pool > mine).sum())
    equal = int((pool == mine).sum()) - 1
    return higher + equal // 2 + 1


def _queries(hidden: IntArray) -> dict[int, list[tuple[int, int, int]]]:
    """Query city -> [(pair, end, target)]: one score row serves all of a city's pairs."""
    out: dict[int, list[tuple[int, int, int]]] = {}
    for p, (a, b) in enumerate(hidden.tolist()):
        out.setdefault(a, []).append((p, 0, b))
        out.setdefault(b, []).append((p, 1, a))
    return out


@dataclass
class _Tally:
    """One method's per-pair values across the splits, and its time."""

    hits: list[FloatArray]
    rr: list[FloatArray]
    fit_s: float = 0.0
    query_s: float = 0.0
    rows: int = 0


def _run_split(
    method: Method,
    split: Holdout,
    queries: dict[int, list[tuple[int, int, int]]],
    profiles: NDArray[np.float32],
    k: int,
    tally: _Tally,
) -> None:
    visible = split.visible
    start = time.perf_counter()
    scorer = method.fit(visible, profiles)
    tally.fit_s += time.perf_counter() - start
    ranks = np.zeros((len(split.hidden), 2))
    for src, asked in queries.items():
        start = time.perf_counter()
        row = np.asarray(scorer(src), dtype=np.float64)
        tally.query_s += time.perf_counter() - start
        tally.rows += 1
        row = np.where(np.isnan(row), -np.inf, row)
        candidates = np.ones(visible.n, dtype=bool)
        candidates[visible.partners_of(src)] = False
        candidates[src] = False
        for pair, end, target in asked:
            ranks[pair, end] = _rank(row, candidates, target)
    tally.hits.append((ranks <= k).mean(axis=1))
    tally.rr.append((1.0 / ranks).mean(axis=1))


def evaluate_partners(
    arr: NetworkArrays,
    profiles: NDArray[np.float32],
    methods: Sequence[Method],
    *,
    holdout: float = 0.1,
    splits: int = 5,
    k: int = 10,
    seed: int = 0,
) -> PartnerEvaluation:
    """Hits@k and MRR of each method on the same held-out ties (``splits`` random splits,
    each hiding ``holdout`` of the ties), with standard errors over the pooled pairs."""
    if splits < 1:
        raise InvalidInput(f"splits must be at least 1, not {splits}")
    if k < 1:
        raise InvalidInput(f"k must be at least 1, not {k}")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise InvalidInput(f"method names must differ: {', '.join(names)}")
    edges = tie_edges(arr)
    hidden_per_split(len(edges), holdout)  # the clear error before any work
    split_seeds = np.random.default_rng(seed).integers(0, 2**62, size=splits).tolist()
    tallies = [_Tally([], []) for _ in methods]
    common: list[BoolArray] = []
    for split_seed in split_seeds:
        split = holdout_split(arr, holdout, int(split_seed))
        common.append(split.common)
        queries = _queries(split.hidden)
        for method, tally in zip(methods, tallies, strict=True):
            _run_split(method, split, queries, profiles, k, tally)
    with_common = np.concatenate(common)
    results = []
    for method, tally in zip(methods, tallies, strict=True):
        hits, rr = np.concatenate(tally.hits), np.concatenate(tally.rr)
        results.append(
            MethodEvaluation(
                name=method.name,
                overall=_scores(hits, rr),
                with_common_neighbour=_scores(hits[with_common], rr[with_common]),
                without_common_neighbour=_scores(hits[~with_common], rr[~with_common]),
                fit_s=tally.fit_s,
                query_ms=1000.0 * tally.query_s / max(tally.rows, 1),
            )
        )
    return PartnerEvaluation(
        cities=arr.n,
        ties=len(edges),
        holdout=holdout,
        splits=splits,
        k=k,
        seed=seed,
        pairs=len(with_common),
        pairs_with_common_neighbour=int(with_common.sum()),
        pairs_without_common_neighbour=int((~with_common).sum()),
        methods=tuple(results),
    )
