"""Expert assignment: which experts accompany which clusters of cities, and why.

The pipeline, one function per step, plain arrays between them:

1. ``build_affinity(data, weights)`` turns plain expert-by-cluster data (profile similarity,
   theme levels, working languages, distances, conflicts) into an affinity matrix, a
   mask of pairs that must not be made, and the per-pair breakdown behind each score.
2. ``solve_assignment(affinity, capacity, demand, forbidden)`` finds the assignment of
   greatest total affinity: every cluster gets exactly its demand of experts, no expert
   exceeds their capacity, no pair is used twice, no forbidden pair is used. It is a
   transportation problem, solved exactly as a min-cost flow (OR-Tools).
   ``solve_fair_assignment`` first maximises the worst-served cluster's mean affinity,
   then the total (CP-SAT).
3. ``assign_experts(expert_ids, cluster_ids, data, capacity, demand)`` runs both steps and
   returns frozen dataclasses: each pair with its score, components and plain-language
   reasons, each expert's load, each cluster that cannot be fully served and what to relax.

Everything here is pure: arrays in, new arrays or frozen dataclasses out, inputs never
modified, no I/O; the only randomness (CP-SAT's search) takes a ``seed``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from ortools.graph.python import max_flow, min_cost_flow
from ortools.sat.python import cp_model

from graph.errors import IccmatchError, Infeasible, InvalidInput
from matching.reasons import Reason

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "Affinity",
    "AffinityWeights",
    "AssignedPair",
    "ExpertAssignment",
    "ExpertClusterData",
    "ExpertLoad",
    "FairnessTimeout",
    "InfeasibleAssignment",
    "InvalidAssignmentInput",
    "ShortfallGroup",
    "UnservedCluster",
    "assign_experts",
    "build_affinity",
    "cluster_mean_affinity",
    "cosine_similarity",
    "describe_shortfall",
    "distance_matrix_km",
    "place_conflicts",
    "solve_assignment",
    "solve_fair_assignment",
    "spherical_centroids",
]

# --- errors ----------------------------------------------------------------------------


class InvalidAssignmentInput(InvalidInput, ValueError):
    """The arrays handed to the solver or the affinity builder are malformed."""


@dataclass(frozen=True, slots=True)
class ShortfallGroup:
    """Clusters that together ask for more than the experts eligible for them can give.

    A Hall violator of the assignment problem, read off the minimum cut of the max flow:
    whatever the assignment, these clusters jointly miss ``missing`` experts. Which of
    them goes short is a choice (``assign_experts`` lets affinity decide); that the group
    goes short is not. Groups are independent: relaxing one group helps only that group.
    """

    clusters: tuple[int, ...]  # cluster indices, ascending
    demand: int  # experts the clusters ask for, together
    servable: int  # the most of that demand any assignment can meet
    experts: int  # experts with capacity > 0 eligible for at least one of the clusters
    idle_experts: int  # experts eligible for one of the clusters but with capacity 0

    @property
    def missing(self) -> int:
        return self.demand - self.servable


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _name_list(names: Sequence[str], limit: int = 8) -> str:
    if len(names) <= limit:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def describe_shortfall(group: ShortfallGroup, cluster_names: Sequence[str]) -> str:
    """One sentence: what is short, and what to relax to fix it."""
    if len(group.clusters) == 1:
        (c,) = group.clusters
        what = (
            f"cluster {cluster_names[c]} needs {_plural(group.demand, 'expert')} but only "
            f"{group.servable} eligible {'expert' if group.servable == 1 else 'experts'} "
            f"can take it"
        )
        fixes = ["allow more experts for it (forbidden pairs, working language, conflicts)"]
        if group.idle_experts:
            fixes.insert(
                0,
                f"raise max_assignments of the {_plural(group.idle_experts, 'eligible expert')} "
                f"who {'takes' if group.idle_experts == 1 else 'take'} none",
            )
        fixes.append("lower its demand")
    else:
        names = [cluster_names[c] for c in group.clusters]
        what = (
            f"clusters {_name_list(names)} need {group.demand} experts between them but the "
            f"{_plural(group.experts, 'expert')} eligible for them can take only "
            f"{group.servable} of these assignments"
        )
        fixes = [
            "raise max_assignments of those experts",
            "allow more experts (forbidden pairs, working language, conflicts)",
            "lower per-cluster demand",
        ]
    return f"{what}: {', '.join(fixes[:-1])}, or {fixes[-1]}"


class InfeasibleAssignment(Infeasible, ValueError):
    """No assignment gives every cluster its demand.

    ``groups`` are the independent bottlenecks (see ``ShortfallGroup``), ``clusters`` every
    cluster in one of them, ``missing`` the number of expert slots no assignment can fill.
    """

    def __init__(
        self, groups: Sequence[ShortfallGroup], cluster_names: Sequence[str] | None = None
    ) -> None:
        self.groups: tuple[ShortfallGroup, ...] = tuple(groups)
        self.clusters: tuple[int, ...] = tuple(sorted(c for g in self.groups for c in g.clusters))
        self.missing: int = sum(g.missing for g in self.groups)
        n = 1 + max(self.clusters, default=0)
        names = list(cluster_names) if cluster_names is not None else [str(c) for c in range(n)]
        shown = [describe_shortfall(g, names) for g in self.groups[:5]]
        more = len(self.groups) - len(shown)
        detail = (
            f"No assignment serves every cluster ({_plural(self.missing, 'expert slot')} "
            f"short): " + "; ".join(shown) + (f"; and {more} more such groups" if more else "")
        )
        super().__init__(detail)

    def with_names(self, cluster_names: Sequence[str]) -> InfeasibleAssignment:
        """The same error, with clusters named by id instead of by index."""
        return InfeasibleAssignment(self.groups, cluster_names)


class FairnessTimeout(IccmatchError, TimeoutError):
    """The fair assignment was not proven optimal within the time limit."""

    status = 503
    title = "Solver time limit reached"


# --- validation ------------------------------------------------------------------------

_MAX_COUNT: Final = 2**31 - 1


@dataclass(frozen=True, slots=True, eq=False)
class _Problem:
    """Validated, private copies of the solver's inputs."""

    affinity: FloatArray  # (E, C)
    capacity: IntArray  # (E,)
    demand: IntArray  # (C,)
    allowed: BoolArray  # (E, C): not forbidden

    @property
    def shape(self) -> tuple[int, int]:
        e, c = self.affinity.shape
        return int(e), int(c)


def _counts(values: Any, name: str, length: int, what: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise InvalidAssignmentInput(
            f"{name} must be a 1-D array with one entry per {what} ({length}), got shape "
            f"{arr.shape}"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"{name} must hold integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidAssignmentInput(
                f"{name}[{i}] is {arr[i]!r}: {name} must be whole numbers of experts"
            )
    if arr.size and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise InvalidAssignmentInput(f"{name}[{i}] is {arr[i]}: {name} must be >= 0 (0 means none)")
    if arr.size and (arr > _MAX_COUNT).any():
        i = int(np.flatnonzero(arr > _MAX_COUNT)[0])
        raise InvalidAssignmentInput(f"{name}[{i}] is {arr[i]}: that is not a realistic count")
    return arr.astype(np.int64)


def _validate(affinity: Any, capacity: Any, demand: Any, forbidden: Any) -> _Problem:
    a = np.asarray(affinity)
    if a.ndim != 2:
        raise InvalidAssignmentInput(
            f"affinity must be a 2-D array (experts x clusters), got {a.ndim} dimension(s)"
        )
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"affinity must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)  # a private copy
    n_e, n_c = a.shape
    if not np.isfinite(a).all():
        e, c = (int(v) for v in np.argwhere(~np.isfinite(a))[0])
        raise InvalidAssignmentInput(
            f"affinity[{e}, {c}] is {a[e, c]}: scores must be finite; forbid the pair "
            "instead of scoring it -inf"
        )
    cap = _counts(capacity, "capacity", n_e, "expert")
    dem = _counts(demand, "demand", n_c, "cluster")
    if forbidden is None:
        allowed = np.ones((n_e, n_c), dtype=np.bool_)
    else:
        f = np.asarray(forbidden)
        if f.shape != (n_e, n_c):
            raise InvalidAssignmentInput(
                f"forbidden must have the shape of affinity {(n_e, n_c)}, got {f.shape}"
            )
        if f.dtype != np.bool_ and (
            not np.issubdtype(f.dtype, np.integer) or not np.isin(f, (0, 1)).all()
        ):
            raise InvalidAssignmentInput(
                f"forbidden must be a boolean mask (True = never pair), got dtype {f.dtype}"
            )
        allowed = ~f.astype(np.bool_)
    return _Problem(a, cap, dem, allowed)


# --- the plain solver: a min-cost flow -------------------------------------------------

_INT64_MAX: Final = 2**63 - 1
_MAX_COST_BITS: Final = 52  # a float64 times a power of two rounds exactly below 2**52
_FAIR_BITS: Final = 20  # resolution of the fair solver's integer affinities
_FAIR_WARM_STEPS: Final = 30  # Lagrangian warm-start rounds before CP-SAT...
_FAIR_PATIENCE: Final = 8  # ...stopping after this many without improvement


def _cost_bits(num_nodes: int) -> int:
    """Bits of the largest integer cost OR-Tools accepts for a graph of ``num_nodes``.

    OR-Tools' cost-scaling push-relabel multiplies costs by ``num_nodes + 1`` and rejects
    (``BAD_COST_RANGE``) any cost above ``INT64_MAX / (2 (num_nodes + 1))``; its max-flow
    variant adds two nodes. One bit of margin on top.
    """
    threshold = _INT64_MAX // (2 * (num_nodes + 3))
    return min(_MAX_COST_BITS, threshold.bit_length() - 2)


def _scale_to_int(values: FloatArray, bits: int) -> IntArray:
    """``values * 2**k`` rounded, with the power of two ``2**k`` chosen so |result| < 2**bits."""
    peak = float(np.abs(values).max(initial=0.0))
    if peak == 0.0:
        return np.zeros(values.shape, dtype=np.int64)
    _, exponent = math.frexp(peak)  # peak < 2**exponent
    return np.rint(np.ldexp(values, bits - exponent)).astype(np.int64)


class _CostRange(Exception):
    """OR-Tools rejected the integer costs (BAD_COST_RANGE): retry with fewer bits."""


def _flow(p: _Problem) -> tuple[IntArray, bool]:
    """The best assignment that serves as much demand as possible; and whether it serves all.

    Integer costs ``cost[e, c] = -rint(affinity * 2**k)`` are fixed once for all usable
    pairs. Large dense instances are first solved on a sparse candidate graph (each
    cluster's and each expert's best pairs) and then *priced*: integer dual potentials
    of that optimum (Bellman-Ford on its residual graph) give every left-out pair's
    reduced cost exactly; pairs with a negative one join the graph and it is solved
    again. When none is left the sparse optimum is optimal for the full integer problem
    (LP duality), so sparsifying changes speed, never the answer. A sparse graph that
    cannot serve every cluster, or too many pricing rounds, fall back to the full graph,
    which also finds the maximum partial flow when the problem is infeasible.
    """
    n_e, n_c = p.shape
    total = int(p.demand.sum())
    if total == 0:
        return np.zeros((n_e, n_c), dtype=np.int64), True
    usable = p.allowed & (p.capacity > 0)[:, None] & (p.demand > 0)[None, :]
    if not usable.any():
        return np.zeros((n_e, n_c), dtype=np.int64), False
    bits = _cost_bits(n_e + n_c + 2)
    while True:
        cost = np.where(usable, -_scale_to_int(np.where(usable, p.affinity, 0.0), bits), 0)
        try:
            keep = _candidates(p, usable)
            if keep is not None:
                x = _priced_flow(p, usable, cost, keep)
                if x is None:
                    # Candidates too narrow to serve everyone (e.g. all clusters prefer
                    # the same experts): add any feasible assignment's pairs, if one exists.
                    feasible = _feasible_pairs(p, usable)
                    if feasible is not None:
                        x = _priced_flow(p, usable, cost, keep | feasible)
                if x is not None:
                    return x, True
            return _solve_arcs(p, usable, cost, partial=True)
        except _CostRange:
            if bits <= 24:
                raise RuntimeError("OR-Tools rejected every cost scaling tried") from None
            bits -= 8  # potentials overflowed: coarser costs, still far below float noise


def _solve_arcs(
    p: _Problem, arcs: BoolArray, cost: IntArray, *, partial: bool
) -> tuple[IntArray, bool]:
    """Min-cost flow on the expert→cluster pairs in ``arcs``.

    Nodes: source 0, experts 1..E, clusters E+1..E+C, sink E+C+1. Arcs: source→expert
    (capacity), expert→cluster (capacity 1, ``cost``), cluster→sink (demand); supply
    sum(demand) at the source. Infeasible: with ``partial`` the maximum flow of least
    cost, else zeros; the flag says whether every cluster got its demand.
    """
    n_e, n_c = p.shape
    x = np.zeros((n_e, n_c), dtype=np.int64)
    ei, ci = np.nonzero(arcs)
    num_nodes = n_e + n_c + 2
    sink = num_nodes - 1
    experts = np.arange(1, n_e + 1, dtype=np.int32)
    clusters = np.arange(n_e + 1, n_e + n_c + 1, dtype=np.int32)
    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        np.concatenate([np.zeros(n_e, np.int32), experts[ei], clusters]),
        np.concatenate([experts, clusters[ci], np.full(n_c, sink, np.int32)]),
        np.concatenate([np.minimum(p.capacity, n_c), np.ones(ei.size, np.int64), p.demand]),
        np.concatenate([np.zeros(n_e, np.int64), cost[ei, ci], np.zeros(n_c, np.int64)]),
    )
    supplies = np.zeros(num_nodes, dtype=np.int64)
    supplies[0], supplies[sink] = int(p.demand.sum()), -int(p.demand.sum())
    solver.set_nodes_supplies(np.arange(num_nodes, dtype=np.int32), supplies)
    status = solver.solve()
    complete = status == solver.OPTIMAL
    if status == solver.INFEASIBLE:
        if not partial:
            return x, False
        status = solver.solve_max_flow_with_min_cost()
    if status == solver.BAD_COST_RANGE:
        raise _CostRange
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-Tools min-cost flow failed with status {status}")
    x[ei, ci] = np.asarray(
        solver.flows(np.arange(n_e, n_e + ei.size, dtype=np.int32)), dtype=np.int64
    )
    return x, complete


_SPARSE_MIN_PAIRS = 20_000  # below this many usable pairs, the full graph is solved directly
_SPARSE_PER_CLUSTER = (2, 8)  # candidates: each cluster's best 2 * demand + 8 experts...
_SPARSE_PER_EXPERT = (2, 4)  # ...and each expert's best 2 * capacity + 4 clusters
_SPARSE_MAX_SHARE = 0.5  # used only when that keeps under half of the usable pairs
_PRICING_PER_CLUSTER = 8  # pairs admitted per round: each cluster's most negative 8...
_PRICING_PER_EXPERT = 4  # ...and each expert's most negative 4
_PRICING_ROUNDS = 40  # then fall back to the full graph


def _candidates(p: _Problem, usable: BoolArray) -> BoolArray | None:
    """The sparse candidate graph, or None when it would not be much sparser."""
    n_e, n_c = p.shape
    count = int(usable.sum())
    if count < _SPARSE_MIN_PAIRS:
        return None
    score = np.where(usable, p.affinity, -np.inf)
    keep = np.zeros((n_e, n_c), dtype=np.bool_)
    mul, add = _SPARSE_PER_CLUSTER
    k = min(n_e, mul * int(p.demand.max()) + add)
    if k < n_e:
        top = np.argpartition(-score, k - 1, axis=0)[:k]
        keep[top, np.arange(n_c)[None, :]] = True
    else:
        keep[:] = True
    mul, add = _SPARSE_PER_EXPERT
    m = min(n_c, mul * int(min(p.capacity.max(), n_c)) + add)
    if m < n_c:
        top = np.argpartition(-score, m - 1, axis=1)[:, :m]
        keep[np.arange(n_e)[:, None], top] = True
    else:
        keep[:] = True
    keep &= usable
    return keep if int(keep.sum()) < _SPARSE_MAX_SHARE * count else None


def _priced_flow(
    p: _Problem, usable: BoolArray, cost: IntArray, keep: BoolArray
) -> IntArray | None:
    """Solve on ``keep``, add the pairs that price out most negative, repeat (see ``_flow``).

    Partial pricing: each round admits, per cluster and per expert, only the most
    negative few, so the graph stays sparse even when the first duals are poor.
    """
    keep = keep.copy()
    n_e, n_c = p.shape
    k = min(n_e, _PRICING_PER_CLUSTER)
    m = min(n_c, _PRICING_PER_EXPERT)
    for _ in range(_PRICING_ROUNDS):
        x, complete = _solve_arcs(p, keep, cost, partial=False)
        if not complete:
            return None
        pot_e, pot_c = _potentials(p, keep, cost, x)
        reduced = cost + pot_e[:, None] - pot_c[None, :]
        negative = usable & ~keep & (reduced < 0)
        if not negative.any():
            return x
        ranked = np.where(negative, reduced, 0)
        entering = np.zeros_like(negative)
        rows = np.argpartition(ranked, k - 1, axis=0)[:k]
        entering[rows, np.arange(n_c)[None, :]] = True
        cols = np.argpartition(ranked, m - 1, axis=1)[:, :m]
        entering[np.arange(n_e)[:, None], cols] = True
        keep |= entering & negative
    return None


def _feasible_pairs(p: _Problem, usable: BoolArray) -> BoolArray | None:
    """The pairs of some assignment serving every cluster (a maximum flow), or None."""
    n_e, n_c = p.shape
    ei, ci = np.nonzero(usable)
    sink = n_e + n_c + 1
    experts = np.arange(1, n_e + 1, dtype=np.int32)
    clusters = np.arange(n_e + 1, n_e + n_c + 1, dtype=np.int32)
    solver = max_flow.SimpleMaxFlow()
    solver.add_arcs_with_capacity(
        np.concatenate([np.zeros(n_e, np.int32), experts[ei], clusters]),
        np.concatenate([experts, clusters[ci], np.full(n_c, sink, np.int32)]),
        np.concatenate([np.minimum(p.capacity, n_c), np.ones(ei.size, np.int64), p.demand]),
    )
    if solver.solve(0, sink) != solver.OPTIMAL:
        raise RuntimeError("OR-Tools max flow failed")
    if solver.optimal_flow() < int(p.demand.sum()):
        return None
    out = np.zeros((n_e, n_c), dtype=np.bool_)
    flows = np.asarray(solver.flows(np.arange(n_e, n_e + ei.size, dtype=np.int32)))
    out[ei[flows > 0], ci[flows > 0]] = True
    return out


def _potentials(
    p: _Problem, arcs: BoolArray, cost: IntArray, x: IntArray
) -> tuple[IntArray, IntArray]:
    """Integer node potentials proving ``x`` optimal on ``arcs`` (experts', clusters').

    Shortest distances from a virtual root (0 to every node) in the residual graph, by
    Bellman-Ford in exact int64 arithmetic: |distance| <= nodes * 2**bits < 2**63. Every
    residual arc then has reduced cost ``cost + d[tail] - d[head] >= 0``.
    """
    n_e, n_c = p.shape
    ei, ci = np.nonzero(arcs)
    used = x[ei, ci] == 1
    load, served = x.sum(axis=1), x.sum(axis=0)
    e_node, c_node = ei + 1, n_e + 1 + ci
    experts, clusters = np.arange(1, n_e + 1), np.arange(n_e + 1, n_e + n_c + 1)
    sink = n_e + n_c + 1
    room = load < np.minimum(p.capacity, n_c)
    tails = np.concatenate(
        [
            np.where(used, c_node, e_node),
            np.zeros(int(room.sum()), np.int64),
            experts[load > 0],
            np.full(int((served > 0).sum()), sink),
        ]
    )
    heads = np.concatenate(
        [
            np.where(used, e_node, c_node),
            experts[room],
            np.zeros(int((load > 0).sum()), np.int64),
            clusters[served > 0],
        ]
    )
    pair_cost = cost[ei, ci]
    costs = np.concatenate(
        [np.where(used, -pair_cost, pair_cost), np.zeros(tails.size - ei.size, np.int64)]
    )
    order = np.argsort(heads, kind="stable")
    tails, heads, costs = tails[order], heads[order], costs[order]
    targets, starts = np.unique(heads, return_index=True)
    dist = np.zeros(n_e + n_c + 2, dtype=np.int64)
    for _ in range(n_e + n_c + 3):
        best = np.minimum.reduceat(dist[tails] + costs, starts)
        improved = best < dist[targets]
        if not improved.any():
            return dist[experts], dist[clusters]
        dist[targets[improved]] = best[improved]
    raise RuntimeError("the min-cost flow returned a non-optimal flow (negative cycle)")


def _shortfall_groups(p: _Problem, x: IntArray) -> tuple[ShortfallGroup, ...]:
    """The independent bottlenecks of a maximum flow ``x`` that leaves demand unserved.

    T, the nodes that can still reach the sink in the residual graph, is the sink side of
    the canonical minimum cut (the same for every maximum flow). Its clusters form a Hall
    violator: they ask for more than the experts in T (at full capacity) plus one
    assignment from each other eligible expert. Connected pieces of T are independent.
    """
    usable = p.allowed & (p.capacity > 0)[:, None] & (p.demand > 0)[None, :]
    free = usable & (x == 0)  # residual expert→cluster arcs
    used = x == 1  # residual cluster→expert arcs
    in_c = x.sum(axis=0) < p.demand  # residual cluster→sink arcs
    in_e = np.zeros(p.shape[0], dtype=np.bool_)
    while True:
        add_e = ~in_e & free[:, in_c].any(axis=1)
        in_e |= add_e
        add_c = ~in_c & used[in_e].any(axis=0)
        in_c |= add_c
        if not add_e.any() and not add_c.any():
            break
    e_idx, c_idx = np.flatnonzero(in_e), np.flatnonzero(in_c)
    link = usable[np.ix_(e_idx, c_idx)]
    label = np.full(c_idx.size, -1)
    groups: list[ShortfallGroup] = []
    served = x.sum(axis=0)
    for start in range(c_idx.size):
        if label[start] >= 0:
            continue
        members = np.zeros(c_idx.size, dtype=np.bool_)
        members[start] = True
        while True:
            grown = link[link[:, members].any(axis=1)].any(axis=0) | members
            if (grown == members).all():
                break
            members = grown
        label[members] = len(groups)
        cs = c_idx[members]
        eligible = p.allowed[:, cs].any(axis=1)
        groups.append(
            ShortfallGroup(
                clusters=tuple(int(c) for c in cs),
                demand=int(p.demand[cs].sum()),
                servable=int(served[cs].sum()),
                experts=int((eligible & (p.capacity > 0)).sum()),
                idle_experts=int((eligible & (p.capacity == 0)).sum()),
            )
        )
    return tuple(groups)


def solve_assignment(
    affinity: npt.ArrayLike,
    capacity: npt.ArrayLike,
    demand: npt.ArrayLike,
    forbidden: npt.ArrayLike | None = None,
) -> IntArray:
    """The 0/1 expert-by-cluster assignment of greatest total affinity.

    ``affinity`` (experts x clusters, higher is better, may be negative), ``capacity`` (the
    most clusters each expert takes), ``demand`` (exactly how many experts each cluster
    needs), ``forbidden`` (True = never pair). Returns an int64 0/1 array ``x`` maximising
    ``(affinity * x).sum()`` with ``x.sum(1) <= capacity``, ``x.sum(0) == demand`` and
    ``x[forbidden] == 0``. Raises ``InfeasibleAssignment`` (a ``ValueError``) naming the
    clusters that cannot be served, and ``InvalidAssignmentInput`` (also a ``ValueError``)
    for malformed input. Inputs are never modified; the result is deterministic.

    Method: a min-cost flow (OR-Tools ``SimpleMinCostFlow``, cost-scaling push-relabel,
    exact on integers) on source->expert->cluster->sink. The transportation polytope is
    integral, so the flow optimum is the 0/1 optimum. Dense instances (>= 20,000 usable
    pairs) are solved on a sparse candidate graph and priced exactly against every
    other pair (see ``_flow``): same optimum, ~10x less work at 1,500 x 600.

    Exactness of the float -> integer step: costs are ``-rint(affinity * 2**k)``, with the
    power of two chosen so the largest |cost| is below ``2**b``, ``b`` the most OR-Tools
    accepts for this graph less a bit of margin: 49 bits at 1,500 x 600, 52 for small
    graphs (retried with 8 bits fewer, never below 24, should OR-Tools still report
    BAD_COST_RANGE). Each affinity is thus rounded at ~2**-b of the largest |affinity|:
    a few float64 ulps. Multiplying by a power of two is exact, so equal affinities stay
    equal (ties are preserved), and affinities on a coarser grid (decimals with a few
    digits, counts, levels) are represented exactly, making the result exactly optimal.
    For arbitrary floats every feasible assignment's integer objective is within ``K/2``
    units of its scaled float objective (``K = demand.sum()``), so the result is within
    ``K * 2**(1-b) * max|affinity|`` of the true optimum (about 4e-12 x max|affinity| at
    1,500 x 600, K ~ 1,200: the order of float64's own rounding when summing the
    objective), and is *the* optimum whenever
    that one beats every other assignment by more than this. The integer problem itself
    is solved exactly: the sparse path's optimality certificate (dual potentials, pricing)
    is computed in int64.
    """
    p = _validate(affinity, capacity, demand, forbidden)
    x, complete = _flow(p)
    if not complete:
        raise InfeasibleAssignment(_shortfall_groups(p, x))
    return x


# --- the fair variant: max-min cluster mean, then max total ----------------------------


def _now() -> float:
    return time.perf_counter()


def cluster_mean_affinity(
    affinity: npt.ArrayLike, x: npt.ArrayLike, counts: npt.ArrayLike | None = None
) -> FloatArray:
    """Each cluster's mean affinity over its assigned experts (NaN for a cluster with none).

    ``counts`` divides instead of the number of experts assigned (pass ``demand``).
    """
    a, xs = np.asarray(affinity, dtype=np.float64), np.asarray(x)
    n = xs.sum(axis=0) if counts is None else np.asarray(counts)
    totals = (a * xs).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, totals / np.where(n > 0, n, 1), np.nan)


def _fair(p: _Problem, x0: IntArray, time_limit_s: float | None, seed: int) -> IntArray:
    started = _now()
    active = p.demand > 0
    usable = p.allowed & (p.capacity > 0)[:, None] & active[None, :]
    if not usable.any():
        return x0
    cols = np.flatnonzero(active)
    lcm = math.lcm(*(int(d) for d in np.unique(p.demand[active])))
    per = np.zeros(p.shape[1], dtype=np.int64)
    per[active] = lcm // p.demand[active]
    # Integer affinities w; cluster c's mean >= t  <=>  sum_e w*(lcm/d_c)*x >= lcm*t, exactly.
    # Keep each constraint's coefficients summed well inside int64 (and doubles' 2**53).
    room = 53 - (int(lcm) * max(1, int(p.demand.max()))).bit_length()
    bits = max(8, min(_FAIR_BITS, room))
    w = np.where(usable, _scale_to_int(np.where(usable, p.affinity, 0.0), bits), 0)
    weighted = w * per[None, :]

    def worst(x: IntArray) -> int:
        return int((weighted * x).sum(axis=0)[cols].min())

    # Upper bound: each cluster with its d_c best eligible experts, capacities ignored (x0
    # serves every cluster, so each active cluster has at least d_c eligible experts).
    ranked = np.sort(np.where(usable, weighted, np.iinfo(np.int64).min), axis=0)[::-1]
    ub = min(int(ranked[: p.demand[c], c].sum()) for c in cols.tolist())
    t0 = worst(x0)
    if t0 == ub:
        return x0  # the max-total assignment already achieves the best possible minimum

    # A good fair assignment to start from: the Lagrangian dual of max-min is a min over
    # cluster weights lam of max-flow problems with affinity lam_c/d_c * a; multiplicative
    # weights on lam give feasible assignments whose minimum is usually (near) optimal.
    best_x, best_t, stale = x0, t0, 0
    lam = np.ones(p.shape[1]) / cols.size
    scale = float(np.abs(weighted).max()) or 1.0
    for step in range(_FAIR_WARM_STEPS):
        guided = _Problem(
            p.affinity * (lam / np.maximum(p.demand, 1))[None, :], p.capacity, p.demand, p.allowed
        )
        x, _ = _flow(guided)
        values = (weighted * x).sum(axis=0).astype(np.float64)
        t = int(values[cols].min())
        if t > best_t or (t == best_t and (w * x).sum() > (w * best_x).sum()):
            best_x, best_t, stale = x, t, 0
        else:
            stale += 1
        if best_t == ub or stale >= _FAIR_PATIENCE:
            break
        eta = 4.0 / math.sqrt(step + 1)
        lam[cols] *= np.exp(-eta * (values[cols] - values[cols].min()) / scale)
        lam[cols] /= lam[cols].sum()

    # Phase 1: maximise the worst cluster, among pairs that can still be in a solution
    # at least as good as best_t; phase 2: keep that worst, maximise the total.
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # deterministic for a given seed
    solver.parameters.random_seed = seed
    solver.parameters.linearization_level = 2  # the LP bound closes max-min gaps fast

    def remaining() -> float | None:
        return None if time_limit_s is None else max(1e-3, time_limit_s - (_now() - started))

    best = best_t
    if best_t < ub:
        x1 = _cp_fair(
            p,
            solver,
            weighted,
            w,
            usable,
            best_t,
            ub,
            best_x,
            maximise_total=False,
            time_limit_s=remaining(),
        )
        best = worst(x1)
        best_x = x1
    if best == t0:
        return x0  # x0 reaches the best minimum and has the greatest total of all
    return _cp_fair(
        p,
        solver,
        weighted,
        w,
        usable,
        best,
        best,
        best_x,
        maximise_total=True,
        time_limit_s=remaining(),
    )


def _prune(weighted: IntArray, usable: BoolArray, demand: IntArray, threshold: int) -> BoolArray:
    """Pairs (e, c) that some assignment with cluster c's value >= threshold can use.

    Exact: pair (e, c) is dropped only if even e with the d_c - 1 best other eligible
    experts for c stays below the threshold.
    """
    keep = usable.copy()
    floor = np.iinfo(np.int64).min // 4
    ranked = np.sort(np.where(usable, weighted, floor), axis=0)[::-1]
    for c in np.flatnonzero(demand > 0).tolist():
        d = int(demand[c])
        top = int(ranked[:d, c].sum())
        last = int(ranked[d - 1, c])
        col = weighted[:, c]
        # e in the top d: bound is top; else top - last + w_e.
        bound = np.where(col >= last, top, top - last + col)
        keep[:, c] &= bound >= threshold
    return keep


def _cp_fair(
    p: _Problem,
    solver: cp_model.CpSolver,
    weighted: IntArray,
    w: IntArray,
    usable: BoolArray,
    low: int,
    high: int,
    hint: IntArray,
    *,
    maximise_total: bool,
    time_limit_s: float | None,
) -> IntArray:
    """One CP-SAT phase: max worst-cluster value in [low, high], or (maximise_total) the
    total subject to every active cluster's value >= low."""
    keep = _prune(weighted, usable, p.demand, low)
    ei, ci = np.nonzero(keep)
    model = cp_model.CpModel()
    xs = [model.new_bool_var(f"x{e}_{c}") for e, c in zip(ei.tolist(), ci.tolist(), strict=True)]
    by_e: list[list[int]] = [[] for _ in range(p.shape[0])]
    by_c: list[list[int]] = [[] for _ in range(p.shape[1])]
    for k, (e, c) in enumerate(zip(ei.tolist(), ci.tolist(), strict=True)):
        by_e[e].append(k)
        by_c[c].append(k)
    for e, ks in enumerate(by_e):
        if ks and p.capacity[e] < len(ks):
            model.add(cp_model.LinearExpr.sum([xs[k] for k in ks]) <= int(p.capacity[e]))
    t = model.new_int_var(low, high, "worst")
    for c in np.flatnonzero(p.demand > 0).tolist():
        ks = by_c[c]
        model.add(cp_model.LinearExpr.sum([xs[k] for k in ks]) == int(p.demand[c]))
        model.add(
            cp_model.LinearExpr.weighted_sum(
                [xs[k] for k in ks], [int(weighted[ei[k], ci[k]]) for k in ks]
            )
            >= t
        )
    for k in range(len(xs)):
        model.add_hint(xs[k], bool(hint[ei[k], ci[k]]))
    if maximise_total:
        model.maximize(cp_model.LinearExpr.weighted_sum(xs, w[ei, ci].tolist()))
        what = "maximising the total at the best worst-cluster mean"
    else:
        model.maximize(t)
        what = "maximising the worst cluster's mean affinity"
    if time_limit_s is not None:
        solver.parameters.max_time_in_seconds = time_limit_s
    status = solver.solve(model)
    _check_cp_status(solver, status, what, time_limit_s)
    x = np.zeros(p.shape, dtype=np.int64)
    x[ei, ci] = [int(solver.value(v)) for v in xs]
    return x


def _check_cp_status(
    solver: cp_model.CpSolver, status: Any, what: str, time_limit_s: float | None
) -> None:
    if status == cp_model.OPTIMAL:
        return
    if status == cp_model.FEASIBLE or status == cp_model.UNKNOWN:
        raise FairnessTimeout(
            f"the fair assignment was not proven optimal within {time_limit_s} s while "
            f"{what}: raise time_limit_s, or use the plain (max-total) assignment"
        )
    raise RuntimeError(f"CP-SAT returned {solver.status_name(status)} while {what}")


def solve_fair_assignment(
    affinity: npt.ArrayLike,
    capacity: npt.ArrayLike,
    demand: npt.ArrayLike,
    forbidden: npt.ArrayLike | None = None,
    *,
    time_limit_s: float | None = None,
    seed: int = 0,
) -> IntArray:
    """Like ``solve_assignment``, but first as fair as possible to the worst-served cluster.

    Lexicographic: (1) maximise the smallest cluster *mean* affinity (its total divided by
    its demand, so clusters of different sizes compare; clusters with demand 0 do not
    count); (2) among those assignments, maximise the total affinity. Same constraints,
    errors and no-mutation guarantee as ``solve_assignment``.

    Method, with w the integer affinities below:
    1. ``x0``, the max-total flow solution, is a lower bound. If it already reaches the
       best conceivable minimum (each cluster with its top experts, capacities ignored),
       it is the answer: it also has the greatest total of all assignments.
    2. Warm start: the Lagrangian dual of max-min is a min over cluster weights of flow
       problems (affinity x weight_c / d_c); up to 30 rounds of multiplicative weights,
       each one flow solve, give feasible assignments and keep the best minimum found.
    3. Exact pruning: a pair (e, c) is dropped when even e with the d_c - 1 best other
       experts for c cannot reach the best minimum known; this removes most pairs.
    4. CP-SAT phase 1 maximises the minimum over the remaining pairs (one Boolean per
       pair; cluster means compared exactly as integers through the lcm of the demands),
       hinted with the warm start; if its optimum equals x0's, x0 is returned (step 1's
       argument). Phase 2 keeps that minimum and maximises the total, pruned again.
    CP-SAT runs single-threaded with ``seed``, so results are repeatable.

    Exactness: both phases are exact for the affinities rounded to 20 bits relative to
    the largest |affinity| (resolution ~1e-6 of it; fewer bits only if the demands have
    a huge lcm); affinities on a grid at least that coarse are handled exactly. Step 1
    and the x0 shortcut compare those same integers.

    Complexity: max-min fair assignment with demands >= 2 contains balanced partition,
    so it is NP-hard and CP-SAT's worst case is exponential. In practice steps 2-3 leave
    CP-SAT a small model whose LP bound (linearization level 2) is tight: 200 experts x
    60 clusters take 0.003-0.6 s (scripts/bench_experts.py), the warm start being ~30
    flow solves, i.e. O(30 x flow). ``time_limit_s`` bounds the whole call: when it is
    reached before optimality is proven, ``FairnessTimeout`` is raised rather than a
    silently sub-optimal answer returned.
    """
    p = _validate(affinity, capacity, demand, forbidden)
    x0, complete = _flow(p)
    if not complete:
        raise InfeasibleAssignment(_shortfall_groups(p, x0))
    return _fair(p, x0, time_limit_s, seed)


# --- affinity from plain data ----------------------------------------------------------

EARTH_RADIUS_KM: Final = 6371.0088


def cosine_similarity(expert_vectors: npt.ArrayLike, cluster_vectors: npt.ArrayLike) -> FloatArray:
    """Cosine similarity of every expert embedding with every cluster embedding (E x C).

    A zero vector (no text) has similarity 0 with everything.
    """
    u = np.asarray(expert_vectors, dtype=np.float64)
    v = np.asarray(cluster_vectors, dtype=np.float64)
    if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise InvalidAssignmentInput(
            f"embeddings must be 2-D with the same width, got {u.shape} and {v.shape}"
        )
    un = np.linalg.norm(u, axis=1, keepdims=True)
    vn = np.linalg.norm(v, axis=1, keepdims=True)
    u = np.divide(u, un, out=np.zeros_like(u), where=un > 0)
    v = np.divide(v, vn, out=np.zeros_like(v), where=vn > 0)
    out: FloatArray = np.clip(u @ v.T, -1.0, 1.0)
    return out


def spherical_centroids(
    lat: npt.ArrayLike, lon: npt.ArrayLike, members: Sequence[Sequence[int]]
) -> tuple[FloatArray, FloatArray]:
    """(lat, lon) in degrees of each cluster's centre: the normalised mean of its member
    cities' unit vectors (right across the antimeridian, unlike averaging degrees)."""
    la, lo = (
        np.radians(np.asarray(lat, dtype=np.float64)),
        np.radians(np.asarray(lon, dtype=np.float64)),
    )
    xyz = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=1)
    out_lat = np.full(len(members), np.nan)
    out_lon = np.full(len(members), np.nan)
    for k, idx in enumerate(members):
        if len(idx) == 0:
            continue
        m = xyz[list(idx)].mean(axis=0)
        out_lat[k] = math.degrees(math.atan2(m[2], math.hypot(m[0], m[1])))
        out_lon[k] = math.degrees(math.atan2(m[1], m[0]))
    return out_lat, out_lon


def distance_matrix_km(
    expert_lat: npt.ArrayLike,
    expert_lon: npt.ArrayLike,
    cluster_lat: npt.ArrayLike,
    cluster_lon: npt.ArrayLike,
) -> FloatArray:
    """Great-circle km between every expert's home and every cluster centre (NaN: unknown)."""
    la1 = np.radians(np.asarray(expert_lat, dtype=np.float64))[:, None]
    lo1 = np.radians(np.asarray(expert_lon, dtype=np.float64))[:, None]
    la2 = np.radians(np.asarray(cluster_lat, dtype=np.float64))[None, :]
    lo2 = np.radians(np.asarray(cluster_lon, dtype=np.float64))[None, :]
    h = np.sin((la2 - la1) / 2) ** 2 + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2
    out: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


def place_conflicts(
    expert_countries: Sequence[str | None],
    cluster_countries: Sequence[Collection[str]],
    expert_cities: Sequence[str | None] | None = None,
    cluster_cities: Sequence[Collection[str]] | None = None,
    *,
    same_country: bool = True,
) -> BoolArray:
    """Conflicts of interest (E x C): the expert is based in one of the cluster's member
    cities, or (``same_country``) in one of its member cities' countries."""
    n_e, n_c = len(expert_countries), len(cluster_countries)
    out = np.zeros((n_e, n_c), dtype=np.bool_)
    for c in range(n_c):
        countries = set(cluster_countries[c]) if same_country else set()
        cities = set(cluster_cities[c]) if cluster_cities is not None else set()
        for e in range(n_e):
            home_city = expert_cities[e] if expert_cities is not None else None
            out[e, c] = (expert_countries[e] in countries) or (
                home_city is not None and home_city in cities
            )
    return out


@dataclass(frozen=True, slots=True)
class AffinityWeights:
    """How the affinity of an expert for a cluster is made up (all terms add up).

    ``similarity`` x cosine similarity of profiles (-1..1); ``theme`` x theme match
    (0..1: the expert's levels in the cluster's themes, /5, weighted by the themes'
    weights); ``language`` bonus for speaking the cluster's working language (required
    anyway); minus ``distance_per_1000_km`` per 1,000 km between the expert's home and
    the cluster's centre. Pairs beyond ``max_distance_km`` (if set) are forbidden.
    """

    similarity: float = 1.0
    theme: float = 1.0
    language: float = 0.0
    distance_per_1000_km: float = 0.1
    max_distance_km: float | None = None

    def __post_init__(self) -> None:
        for name in ("similarity", "theme", "language", "distance_per_1000_km"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise InvalidAssignmentInput(
                    f"AffinityWeights.{name} must be a finite number >= 0, got {value}"
                )
        if self.max_distance_km is not None and not self.max_distance_km > 0:
            raise InvalidAssignmentInput(
                f"AffinityWeights.max_distance_km must be > 0 or None, got {self.max_distance_km}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class ExpertClusterData:
    """Everything the affinity is made from, as arrays aligned with experts (E), clusters
    (C), themes (T) and languages (L). ``distance_km`` NaN means an unknown location (no
    penalty); ``cluster_language`` -1 means no required working language."""

    similarity: npt.ArrayLike  # (E, C) cosine similarity, see cosine_similarity
    expert_levels: npt.ArrayLike  # (E, T) 0 = none, 1..5
    cluster_themes: npt.ArrayLike  # (C, T) weights >= 0 (e.g. member cities' priorities)
    theme_names: Sequence[str]  # (T,)
    expert_languages: npt.ArrayLike  # (E, L) bool: speaks it
    cluster_language: npt.ArrayLike  # (C,) index into languages, or -1
    language_names: Sequence[str]  # (L,)
    distance_km: npt.ArrayLike  # (E, C), see distance_matrix_km
    conflict: npt.ArrayLike | None = None  # (E, C) bool, see place_conflicts


def _frozen(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


COMPONENTS: Final = ("similarity", "theme", "language", "distance")


@dataclass(frozen=True, slots=True, eq=False)
class Affinity:
    """The affinity matrix, what must not be paired, and the breakdown behind each score.

    ``score`` is ``sum(components.values())``; every array is E x C and read-only.
    ``best_theme``/``best_level``: the cluster theme behind the theme term (-1/0: none).
    The ``no_language``/``conflict``/``too_far`` masks say why a pair is forbidden.
    """

    score: FloatArray
    forbidden: BoolArray
    components: Mapping[str, FloatArray]
    similarity: FloatArray
    best_theme: IntArray
    best_level: IntArray
    distance_km: FloatArray
    no_language: BoolArray
    conflict: BoolArray
    too_far: BoolArray


_SIZES = "experts and clusters from similarity, themes and languages from their names"


def _matrix(
    value: Any, name: str, shape: tuple[int, int], kind: str, dims: str
) -> npt.NDArray[Any]:
    a = np.array(value)  # a copy
    if a.shape != shape:
        raise InvalidAssignmentInput(
            f"{name} must be {dims} {shape} ({_SIZES}), got shape {a.shape}"
        )
    if kind == "bool":
        if a.dtype != np.bool_:
            raise InvalidAssignmentInput(f"{name} must be boolean, got dtype {a.dtype}")
        return a
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"{name} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64)


def build_affinity(
    data: ExpertClusterData, weights: AffinityWeights = AffinityWeights()
) -> Affinity:
    """Affinity of each expert for each cluster, with its parts and the forbidden pairs."""
    sim = np.asarray(data.similarity)
    if sim.ndim != 2:
        raise InvalidAssignmentInput(
            f"similarity must be experts x clusters, got shape {sim.shape}"
        )
    n_e, n_c = (int(v) for v in sim.shape)
    n_t, n_l = len(data.theme_names), len(data.language_names)
    similarity = _matrix(data.similarity, "similarity", (n_e, n_c), "float", "experts x clusters")
    if not np.isfinite(similarity).all() or (np.abs(similarity) > 1 + 1e-9).any():
        raise InvalidAssignmentInput("similarity must be finite cosines in [-1, 1]")
    levels = _matrix(data.expert_levels, "expert_levels", (n_e, n_t), "float", "experts x themes")
    if ((levels < 0) | (levels > 5) | (levels != np.round(levels))).any():
        raise InvalidAssignmentInput("expert_levels must be whole levels 0 (none) to 5")
    themes = _matrix(
        data.cluster_themes, "cluster_themes", (n_c, n_t), "float", "clusters x themes"
    )
    if not np.isfinite(themes).all() or (themes < 0).any():
        raise InvalidAssignmentInput("cluster_themes must be finite weights >= 0")
    speaks = _matrix(
        data.expert_languages, "expert_languages", (n_e, n_l), "bool", "experts x languages"
    )
    required = np.array(data.cluster_language)
    if required.shape != (n_c,) or not np.issubdtype(required.dtype, np.integer):
        raise InvalidAssignmentInput(
            f"cluster_language must be {n_c} integer language indices (-1: none), got "
            f"{required.shape} {required.dtype}"
        )
    if ((required < -1) | (required >= n_l)).any():
        raise InvalidAssignmentInput(
            f"cluster_language entries must be -1 or an index below {n_l} (language_names)"
        )
    distance = _matrix(data.distance_km, "distance_km", (n_e, n_c), "float", "experts x clusters")
    if (distance[~np.isnan(distance)] < 0).any() or np.isinf(distance).any():
        raise InvalidAssignmentInput("distance_km must be finite kilometres >= 0, or NaN (unknown)")
    conflict = (
        np.zeros((n_e, n_c), dtype=np.bool_)
        if data.conflict is None
        else _matrix(data.conflict, "conflict", (n_e, n_c), "bool", "experts x clusters")
    )

    # Theme match: weighted mean of the expert's levels (/5) over the cluster's themes.
    totals = themes.sum(axis=1)
    share = np.divide(themes, totals[:, None], out=np.zeros_like(themes), where=totals[:, None] > 0)
    theme_match = (levels / 5.0) @ share.T
    best_theme = np.full((n_e, n_c), -1, dtype=np.int64)
    best_value = np.zeros((n_e, n_c))
    for t in range(n_t):
        value = levels[:, t, None] * themes[None, :, t]
        better = value > best_value
        best_theme[better], best_value[better] = t, value[better]
    best_level = np.where(
        best_theme >= 0, np.take_along_axis(levels, np.maximum(best_theme, 0), axis=1), 0
    ).astype(np.int64)

    has_language = required >= 0
    speaks_required = np.where(
        has_language[None, :], speaks[:, np.maximum(required, 0)] if n_l else False, True
    )
    no_language = ~speaks_required
    known = ~np.isnan(distance)
    too_far = (
        known & (distance > weights.max_distance_km)
        if weights.max_distance_km is not None
        else np.zeros((n_e, n_c), dtype=np.bool_)
    )
    components = {
        "similarity": weights.similarity * similarity,
        "theme": weights.theme * theme_match,
        "language": weights.language * (has_language[None, :] & speaks_required),
        "distance": -weights.distance_per_1000_km * np.where(known, distance, 0.0) / 1000.0,
    }
    score = np.zeros((n_e, n_c))
    for name in COMPONENTS:
        score = score + components[name]
    return Affinity(
        score=_frozen(score),
        forbidden=_frozen(no_language | conflict | too_far),
        components=MappingProxyType(
            {k: _frozen(np.asarray(v, dtype=np.float64)) for k, v in components.items()}
        ),
        similarity=_frozen(similarity),
        best_theme=_frozen(best_theme),
        best_level=_frozen(best_level),
        distance_km=_frozen(distance),
        no_language=_frozen(no_language),
        conflict=_frozen(conflict),
        too_far=_frozen(too_far),
    )


# --- assignment with reasons -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssignedPair:
    """One expert assigned to one cluster.

    ``score`` is the pair's affinity, ``components`` its parts (they add up to it).
    ``reasons`` go largest first; a reason's ``weight`` is its component's signed share
    of the sum of |components| (0 for the language reason unless it carries a bonus).
    """

    expert_id: str
    cluster_id: str
    score: float
    reasons: tuple[Reason, ...]
    components: dict[str, float]


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    """How many clusters an expert got, out of the most they take."""

    expert_id: str
    assigned: int
    capacity: int


@dataclass(frozen=True, slots=True)
class UnservedCluster:
    """A cluster that gets fewer experts than it asked for, and what to relax."""

    cluster_id: str
    demand: int
    assigned: int
    eligible_experts: int  # with capacity > 0 and allowed
    excluded_by_language: int
    excluded_by_conflict: int
    excluded_by_distance: int
    competing_clusters: tuple[str, ...]  # the other clusters short of the same experts
    relax: str

    @property
    def missing(self) -> int:
        return self.demand - self.assigned


@dataclass(frozen=True, slots=True)
class ExpertAssignment:
    """The outcome of ``assign_experts``; ``notes`` say when seats were left unfilled."""

    pairs: tuple[AssignedPair, ...]  # by cluster, then by descending score
    loads: tuple[ExpertLoad, ...]  # in expert order
    unserved: tuple[UnservedCluster, ...]  # empty when every cluster got its demand
    objective: float  # total affinity of the pairs
    fair: bool  # solved with solve_fair_assignment's max-min objective
    worst_cluster_mean: float | None  # smallest mean affinity over clusters with experts
    notes: tuple[str, ...] = ()


def _similarity_text(value: float) -> str:
    if value >= 0.5:
        closeness = "close to"
    elif value >= 0.25:
        closeness = "somewhat close to"
    else:
        closeness = "far from"
    return f"profile {closeness} the cluster's (similarity {value:.2f})"


def _km_text(km: float) -> str:
    if km < 10:
        return "based less than 10 km from the cluster's centre"
    rounded = round(km, -1) if km < 1000 else round(km, -2)
    return f"based {rounded:,.0f} km from the cluster's centre"


def _reasons(
    aff: Affinity,
    data: ExpertClusterData,
    e: int,
    c: int,
    n_themes_of: IntArray,
    required: IntArray,
) -> tuple[tuple[Reason, ...], dict[str, float]]:
    parts = {name: float(aff.components[name][e, c]) for name in COMPONENTS}
    magnitude = sum(abs(v) for v in parts.values())

    def share(name: str) -> float:
        return parts[name] / magnitude if magnitude else 0.0

    reasons = [
        Reason("similarity", _similarity_text(float(aff.similarity[e, c])), share("similarity"))
    ]
    if n_themes_of[c] > 0:
        t = int(aff.best_theme[e, c])
        if t >= 0:
            which = "the cluster's theme" if n_themes_of[c] == 1 else "one of the cluster's themes"
            text = f"level {int(aff.best_level[e, c])}/5 in {data.theme_names[t]}, {which}"
        else:
            text = "no recorded expertise in the cluster's themes"
        reasons.append(Reason("theme_level", text, share("theme")))
    if required[c] >= 0:
        reasons.append(
            Reason(
                "language",
                f"speaks {data.language_names[int(required[c])]}, the cluster's working language",
                share("language"),
            )
        )
    km = float(aff.distance_km[e, c])
    if not math.isnan(km):
        reasons.append(Reason("distance", _km_text(km), share("distance")))
    reasons.sort(key=lambda r: -abs(r.weight))
    return tuple(reasons), parts


def assign_experts(
    expert_ids: Sequence[str],
    cluster_ids: Sequence[str],
    data: ExpertClusterData,
    capacity: npt.ArrayLike,
    demand: npt.ArrayLike,
    *,
    weights: AffinityWeights = AffinityWeights(),
    fair: bool = False,
    allow_partial: bool = True,
    time_limit_s: float | None = None,
    seed: int = 0,
) -> ExpertAssignment:
    """Assign experts to clusters, each pair with its reasons.

    ``expert_ids``/``cluster_ids`` name the rows/columns of ``data``'s arrays. The
    affinity comes from ``build_affinity(data, weights)``; the assignment from
    ``solve_assignment`` (max total) or, with ``fair``, ``solve_fair_assignment``.
    When not every cluster can get its demand: with ``allow_partial`` (default) the
    assignment fills as many seats as possible (best total among those; with ``fair``,
    fair over the seats filled) and lists the clusters left short in ``unserved`` with
    what to relax; otherwise ``InfeasibleAssignment`` is raised, naming clusters by id.
    With ``fair`` and ``time_limit_s``, ``FairnessTimeout`` when the limit is reached.
    """
    aff = build_affinity(data, weights)
    n_e, n_c = aff.score.shape
    if len(expert_ids) != n_e or len(cluster_ids) != n_c:
        raise InvalidAssignmentInput(
            f"got {len(expert_ids)} expert ids and {len(cluster_ids)} cluster ids for data of "
            f"{n_e} experts x {n_c} clusters"
        )
    for what, ids in (("expert", expert_ids), ("cluster", cluster_ids)):
        if len(set(ids)) != len(ids):
            raise InvalidAssignmentInput(f"{what} ids must be unique")
    p = _validate(aff.score, capacity, demand, aff.forbidden)
    x, complete = _flow(p)
    unserved: tuple[UnservedCluster, ...] = ()
    notes: list[str] = []
    if not complete:
        groups = _shortfall_groups(p, x)
        if not allow_partial:
            raise InfeasibleAssignment(groups, list(cluster_ids))
        unserved = _unserved(p, aff, x, groups, cluster_ids)
        notes.append(
            f"{_plural(sum(u.missing for u in unserved), 'expert seat')} could not be "
            "filled; the assignment fills as many as possible"
        )
    served = x.sum(axis=0)
    if fair:
        x = _fair(_Problem(p.affinity, p.capacity, served, p.allowed), x, time_limit_s, seed)

    required = np.asarray(data.cluster_language)
    n_themes_of = (np.asarray(data.cluster_themes, dtype=np.float64) > 0).sum(axis=1)
    pairs: list[AssignedPair] = []
    for c in range(n_c):
        es = np.flatnonzero(x[:, c])
        for e in sorted(es.tolist(), key=lambda e: (-aff.score[e, c], e)):
            reasons, parts = _reasons(aff, data, e, c, n_themes_of, required)
            pairs.append(
                AssignedPair(expert_ids[e], cluster_ids[c], float(aff.score[e, c]), reasons, parts)
            )
    loads = tuple(
        ExpertLoad(expert_ids[e], int(x[e].sum()), int(p.capacity[e])) for e in range(n_e)
    )
    means = cluster_mean_affinity(p.affinity, x)
    finite = means[~np.isnan(means)]
    return ExpertAssignment(
        pairs=tuple(pairs),
        loads=loads,
        unserved=unserved,
        objective=float((p.affinity * x).sum()),
        fair=fair,
        worst_cluster_mean=float(finite.min()) if finite.size else None,
        notes=tuple(notes),
    )


def _unserved(
    p: _Problem,
    aff: Affinity,
    x: IntArray,
    groups: Sequence[ShortfallGroup],
    cluster_ids: Sequence[str],
) -> tuple[UnservedCluster, ...]:
    served = x.sum(axis=0)
    group_of = {c: g for g in groups for c in g.clusters}
    out = []
    for c in np.flatnonzero(served < p.demand).tolist():
        g = group_of[c]
        others = tuple(cluster_ids[k] for k in g.clusters if k != c)
        with_cap = p.capacity > 0
        reasons = []
        lang, conf, far = (
            int((aff.no_language[:, c] & with_cap).sum()),
            int((aff.conflict[:, c] & with_cap).sum()),
            int((aff.too_far[:, c] & with_cap).sum()),
        )
        for n, one, many in (
            (lang, "does not speak its working language", "do not speak its working language"),
            (conf, "has a conflict of interest", "have a conflict of interest"),
            (far, "lives beyond max_distance_km", "live beyond max_distance_km"),
        ):
            if n:
                reasons.append(f"{_plural(n, 'expert')} {one if n == 1 else many}")
        relax = describe_shortfall(g, list(cluster_ids))
        if reasons:
            relax += " (" + "; ".join(reasons) + ")"
        out.append(
            UnservedCluster(
                cluster_id=cluster_ids[c],
                demand=int(p.demand[c]),
                assigned=int(served[c]),
                eligible_experts=int((p.allowed[:, c] & with_cap).sum()),
                excluded_by_language=lang,
                excluded_by_conflict=conf,
                excluded_by_distance=far,
                competing_clusters=others,
                relax=relax,
            )
        )
    return tuple(out)
