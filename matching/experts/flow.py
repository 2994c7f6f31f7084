"""The exact solver: the expert assignment of greatest total affinity, as a min-cost flow.

Assigning experts to clusters under capacities and demands is a transportation problem;
its polytope is integral, so a min-cost flow (OR-Tools, exact on integers) gives the 0/1
optimum, provably, in a fraction of an LP solver's time. Two things make it fast and
keep it exact: affinities become integers by a power of two (``scale_to_int``: ties
stay ties), and large dense instances are solved on a sparse candidate graph, then
*priced* against every left-out pair with integer dual potentials, so sparsifying changes
the speed, never the answer. When demand cannot all be met, the maximum flow of least
cost is the best partial assignment, and its residual graph names the bottleneck
(``shortfall.py``).

Past ``_BLOCKWISE_MIN_PAIRS`` pairs (20,000 x 20,000 is 400 million) nothing of size
experts x clusters but the float64 affinity and two boolean masks is held: integer costs,
candidates and reduced costs are computed block by block from the affinity, the flow
keeps only its arcs, and ``solve_assignment_pairs`` returns the chosen pairs with the
pricing certificate (``PricingCertificate``) instead of a dense 0/1 matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from ortools.graph.python import max_flow, min_cost_flow

from matching.experts.problem import TransportProblem, validate_problem
from matching.experts.shortfall import InfeasibleAssignment, shortfall_groups
from matching.kernel.arrays import BoolArray, FloatArray, IntArray

_INT64_MAX: Final = 2**63 - 1
_MAX_COST_BITS: Final = 52  # a float64 times a power of two rounds exactly below 2**52


def _cost_bits(num_nodes: int) -> int:
    """Bits of the largest integer cost OR-Tools accepts for a graph of ``num_nodes``.

    OR-Tools' cost-scaling push-relabel multiplies costs by ``num_nodes + 1`` and rejects
    (``BAD_COST_RANGE``) any cost above ``INT64_MAX / (2 (num_nodes + 1))``; its max-flow
    variant adds two nodes. One bit of margin on top.
    """
    threshold = _INT64_MAX // (2 * (num_nodes + 3))
    return min(_MAX_COST_BITS, threshold.bit_length() - 2)


def _scale_shift(peak: float, bits: int) -> int | None:
    """The power of two ``scale_to_int`` multiplies by, ``2**shift``; None: all zero."""
    if peak == 0.0:
        return None
    _, exponent = math.frexp(peak)  # peak < 2**exponent
    return bits - exponent


def scale_to_int(values: FloatArray, bits: int) -> IntArray:
    """``values * 2**k`` rounded, with the power of two ``2**k`` chosen so |result| < 2**bits."""
    shift = _scale_shift(float(np.abs(values).max(initial=0.0)), bits)
    if shift is None:
        return np.zeros(values.shape, dtype=np.int64)
    return np.rint(np.ldexp(values, shift)).astype(np.int64)


class _CostRange(Exception):
    """OR-Tools rejected the integer costs (BAD_COST_RANGE): retry with fewer bits."""


@dataclass(frozen=True, slots=True)
class PricingCertificate:
    """Why an assignment solved on a few candidate pairs is optimal for all of them.

    The last flow was solved on ``arcs`` expert-cluster pairs; its integer dual potentials
    (``_potentials``) gave each of the ``priced_pairs`` usable pairs left out of it a
    reduced cost, exactly, in integer cost units. None negative (``optimal``) proves the
    assignment optimal for the full integer problem (LP duality). Otherwise (the pricing
    rounds ran out) the full optimum exceeds the returned total affinity by at most
    ``gap_bound``: setting each left-out pair's capacity dual to minus its negative
    reduced cost makes the potentials dual-feasible for the full problem, and lowers the
    dual bound by their sum. Integer costs are the affinities times ``1 / unit``, rounded
    (see ``solve_assignment``); the certificate is about that integer problem.
    """

    usable_pairs: int  # pairs a solution may use (allowed, expert and cluster active)
    candidate_arcs: int  # expert-cluster arcs of the first graph solved
    arcs: int  # arcs of the last graph solved
    rounds: int  # min-cost flow solves while pricing (1: the candidates were enough)
    widenings: int  # extra solves to make the candidates feasible (blockwise path only)
    priced_pairs: int  # usable pairs outside the last graph, each priced against its duals
    negative_pairs: int  # of which with a negative reduced cost (0: optimal)
    most_negative: int  # the most negative reduced cost, in integer cost units (0: none)
    gap_bound: float  # the full optimum exceeds the returned total by at most this
    unit: float  # the affinity one integer cost unit stands for
    blockwise: bool  # solved block by block (no dense experts x clusters integer matrix)

    @property
    def optimal(self) -> bool:
        return self.negative_pairs == 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {f: getattr(self, f) for f in self.__slots__}
        out["optimal"] = self.optimal
        return out


def _full_graph(count: int, shift: int | None, *, blockwise: bool) -> PricingCertificate:
    """Solved on every usable pair: nothing left out, nothing to price."""
    return PricingCertificate(
        count, count, count, 1, 0, 0, 0, 0, 0.0, _unit(shift), blockwise=blockwise
    )


def _unit(shift: int | None) -> float:
    return 1.0 if shift is None else math.ldexp(1.0, -shift)


@dataclass(frozen=True, slots=True, eq=False)
class PairAssignment:
    """An assignment as its pairs (ascending by expert, then cluster), with its certificate.

    What ``solve_assignment_pairs`` returns: at 20,000 x 20,000 a dense int64 0/1 matrix
    would be 3.2 GB; ``dense()`` makes one on request.
    """

    shape: tuple[int, int]  # (experts, clusters)
    experts: IntArray  # expert index of each assigned pair
    clusters: IntArray  # cluster index of each assigned pair
    complete: bool  # every cluster got its demand
    certificate: PricingCertificate

    def dense(self, dtype: npt.DTypeLike = np.int64) -> npt.NDArray[Any]:
        """The 0/1 experts x clusters matrix (``dtype=np.int8`` or ``bool`` to save memory)."""
        x = np.zeros(self.shape, dtype=dtype)
        x[self.experts, self.clusters] = 1
        return x


_BLOCKWISE_MIN_PAIRS = 20_000_000  # from this many pairs (~4,500 x 4,500) on: block by block
_BLOCK_PAIRS = 1 << 22  # pairs per block: 32 MB per float64 / int64 temporary


def _blockwise(p: TransportProblem) -> bool:
    n_e, n_c = p.shape
    return n_e * n_c >= _BLOCKWISE_MIN_PAIRS


def best_flow(p: TransportProblem) -> tuple[IntArray, bool]:
    """The best assignment that serves as much demand as possible; and whether it serves all.

    Integer costs ``cost[e, c] = -rint(affinity * 2**k)`` are fixed once for all usable
    pairs. Large dense instances are first solved on a sparse candidate graph (each
    cluster's and each expert's best pairs) and then *priced*: integer dual potentials
    of that optimum (Bellman-Ford on its residual graph) give every left-out pair's
    reduced cost exactly; pairs with a negative one join the graph and it is solved
    again. When none is left the sparse optimum is optimal for the full integer problem
    (LP duality), so sparsifying changes speed, never the answer. A sparse graph that
    cannot serve every cluster, or too many pricing rounds, fall back to the full graph,
    which also finds the maximum partial flow when the problem is infeasible. Past
    ``_BLOCKWISE_MIN_PAIRS`` the same is done block by block (``_blockwise_flow``).
    """
    if _blockwise(p):
        found = _blockwise_flow(p)
        x = np.zeros(p.shape, dtype=np.int64)
        x[found.experts, found.clusters] = 1
        return x, found.complete
    x, complete, _ = _dense_flow(p)
    return x, complete


def flow_pairs(p: TransportProblem) -> PairAssignment:
    """``best_flow`` as pairs, with the pricing certificate; block by block when large."""
    if _blockwise(p):
        return _blockwise_flow(p)
    x, complete, certificate = _dense_flow(p)
    ei, ci = np.nonzero(x)
    return PairAssignment(p.shape, ei.astype(np.int64), ci.astype(np.int64), complete, certificate)


def _dense_flow(p: TransportProblem) -> tuple[IntArray, bool, PricingCertificate]:
    """``best_flow`` on dense experts x clusters arrays, and its certificate."""
    n_e, n_c = p.shape
    total = int(p.demand.sum())
    if total == 0:
        return np.zeros((n_e, n_c), dtype=np.int64), True, _full_graph(0, None, blockwise=False)
    usable = p.usable
    if not usable.any():
        return np.zeros((n_e, n_c), dtype=np.int64), False, _full_graph(0, None, blockwise=False)
    count = int(usable.sum())
    bits = _cost_bits(n_e + n_c + 2)
    while True:
        values = np.where(usable, p.affinity, 0.0)
        shift = _scale_shift(float(np.abs(values).max(initial=0.0)), bits)
        cost = np.where(usable, -scale_to_int(values, bits), 0)
        del values
        try:
            keep = _candidates(p, usable)
            if keep is not None:
                x, rounds, arcs = _priced_flow(p, usable, cost, keep)
                if x is None:
                    # Candidates too narrow to serve everyone (e.g. all clusters prefer
                    # the same experts): add any feasible assignment's pairs, if one exists.
                    feasible = _feasible_pairs(p, usable)
                    if feasible is not None:
                        x, more, arcs = _priced_flow(p, usable, cost, keep | feasible)
                        rounds += more
                if x is not None:
                    certificate = PricingCertificate(
                        count,
                        int(keep.sum()),
                        arcs,
                        rounds,
                        0,
                        count - arcs,
                        0,
                        0,
                        0.0,
                        _unit(shift),
                        blockwise=False,
                    )
                    return x, True, certificate
            x, complete = _solve_arcs(p, usable, cost, partial=True)
            return x, complete, _full_graph(count, shift, blockwise=False)
        except _CostRange:
            if bits <= 24:
                raise RuntimeError("OR-Tools rejected every cost scaling tried") from None
            bits -= 8  # potentials overflowed: coarser costs, still far below float noise


def _solve_arcs(
    p: TransportProblem, arcs: BoolArray, cost: IntArray, *, partial: bool
) -> tuple[IntArray, bool]:
    """Min-cost flow on the expert→cluster pairs in ``arcs`` (see ``_solve_pairs``)."""
    n_e, n_c = p.shape
    x = np.zeros((n_e, n_c), dtype=np.int64)
    ei, ci = np.nonzero(arcs)
    x[ei, ci], complete = _solve_pairs(p, ei, ci, cost[ei, ci], partial=partial)
    return x, complete


def _solve_pairs(
    p: TransportProblem, ei: IntArray, ci: IntArray, pair_cost: IntArray, *, partial: bool
) -> tuple[IntArray, bool]:
    """Min-cost flow on the expert→cluster pairs ``(ei, ci)``: each pair's flow (0 or 1).

    Nodes: source 0, experts 1..E, clusters E+1..E+C, sink E+C+1. Arcs: source→expert
    (capacity), expert→cluster (capacity 1, ``pair_cost``), cluster→sink (demand); supply
    sum(demand) at the source. Infeasible: with ``partial`` the maximum flow of least
    cost, else zeros; the flag says whether every cluster got its demand.
    """
    n_e, n_c = p.shape
    num_nodes = n_e + n_c + 2
    sink = num_nodes - 1
    experts = np.arange(1, n_e + 1, dtype=np.int32)
    clusters = np.arange(n_e + 1, n_e + n_c + 1, dtype=np.int32)
    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        np.concatenate([np.zeros(n_e, np.int32), experts[ei], clusters]),
        np.concatenate([experts, clusters[ci], np.full(n_c, sink, np.int32)]),
        np.concatenate([np.minimum(p.capacity, n_c), np.ones(ei.size, np.int64), p.demand]),
        np.concatenate([np.zeros(n_e, np.int64), pair_cost, np.zeros(n_c, np.int64)]),
    )
    supplies = np.zeros(num_nodes, dtype=np.int64)
    supplies[0], supplies[sink] = int(p.demand.sum()), -int(p.demand.sum())
    solver.set_nodes_supplies(np.arange(num_nodes, dtype=np.int32), supplies)
    status = solver.solve()
    complete = status == solver.OPTIMAL
    if status == solver.INFEASIBLE:
        if not partial:
            return np.zeros(ei.size, dtype=np.int64), False
        status = solver.solve_max_flow_with_min_cost()
    if status == solver.BAD_COST_RANGE:
        raise _CostRange
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-Tools min-cost flow failed with status {status}")
    flows = solver.flows(np.arange(n_e, n_e + ei.size, dtype=np.int32))
    return np.asarray(flows, dtype=np.int64), complete


_SPARSE_MIN_PAIRS = 20_000  # below this many usable pairs, the full graph is solved directly
_SPARSE_PER_CLUSTER = (2, 8)  # candidates: each cluster's best 2 * demand + 8 experts...
_SPARSE_PER_EXPERT = (2, 4)  # ...and each expert's best 2 * capacity + 4 clusters
_SPARSE_MAX_SHARE = 0.5  # used only when that keeps under half of the usable pairs
_PRICING_PER_CLUSTER = 8  # pairs admitted per round: each cluster's most negative 8...
_PRICING_PER_EXPERT = 4  # ...and each expert's most negative 4
_PRICING_ROUNDS = 40  # then fall back to the full graph (blockwise: report the gap)


def _candidates(p: TransportProblem, usable: BoolArray) -> BoolArray | None:
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
    p: TransportProblem, usable: BoolArray, cost: IntArray, keep: BoolArray
) -> tuple[IntArray | None, int, int]:
    """Solve on ``keep``, add the pairs that price out most negative, repeat (see ``best_flow``).

    Partial pricing: each round admits, per cluster and per expert, only the most
    negative few, so the graph stays sparse even when the first duals are poor. Returns
    the optimum (None: the graph cannot serve everyone, or the rounds ran out), the
    number of solves and the arcs of the last graph.
    """
    keep = keep.copy()
    n_e, n_c = p.shape
    k = min(n_e, _PRICING_PER_CLUSTER)
    m = min(n_c, _PRICING_PER_EXPERT)
    for done in range(1, _PRICING_ROUNDS + 1):
        x, complete = _solve_arcs(p, keep, cost, partial=False)
        if not complete:
            return None, done, int(keep.sum())
        pot_e, pot_c = _potentials(p, keep, cost, x)
        reduced = cost + pot_e[:, None] - pot_c[None, :]
        negative = usable & ~keep & (reduced < 0)
        if not negative.any():
            return x, done, int(keep.sum())
        ranked = np.where(negative, reduced, 0)
        entering = np.zeros_like(negative)
        rows = np.argpartition(ranked, k - 1, axis=0)[:k]
        entering[rows, np.arange(n_c)[None, :]] = True
        cols = np.argpartition(ranked, m - 1, axis=1)[:, :m]
        entering[np.arange(n_e)[:, None], cols] = True
        keep |= entering & negative
    return None, _PRICING_ROUNDS, int(keep.sum())


def _feasible_pairs(p: TransportProblem, usable: BoolArray) -> BoolArray | None:
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
    p: TransportProblem, arcs: BoolArray, cost: IntArray, x: IntArray
) -> tuple[IntArray, IntArray]:
    """Integer node potentials proving ``x`` optimal on ``arcs`` (see ``_pair_potentials``)."""
    ei, ci = np.nonzero(arcs)
    return _pair_potentials(p, ei, ci, cost[ei, ci], x[ei, ci] == 1)


def _pair_potentials(
    p: TransportProblem, ei: IntArray, ci: IntArray, pair_cost: IntArray, used: BoolArray
) -> tuple[IntArray, IntArray]:
    """Integer node potentials proving a flow optimal on the pairs ``(ei, ci)`` (experts',
    clusters'); ``used``: the pairs carrying flow.

    Shortest distances from a virtual root (0 to every node) in the residual graph, by
    Bellman-Ford in exact int64 arithmetic: |distance| <= nodes * 2**bits < 2**63. Every
    residual arc then has reduced cost ``cost + d[tail] - d[head] >= 0``.
    """
    n_e, n_c = p.shape
    load = np.bincount(ei[used], minlength=n_e)
    served = np.bincount(ci[used], minlength=n_c)
    e_node, c_node = ei + 1, n_e + 1 + ci
    experts, clusters = np.arange(1, n_e + 1), np.arange(n_e + 1, n_e + n_c + 1)
    sink = n_e + n_c + 1
    room = load < np.minimum(p.capacity, n_c)
    short = served < p.demand  # a partial (maximum) flow: cluster→sink arcs left
    tails = np.concatenate(
        [
            np.where(used, c_node, e_node),
            np.zeros(int(room.sum()), np.int64),
            experts[load > 0],
            np.full(int((served > 0).sum()), sink),
            clusters[short],
        ]
    )
    heads = np.concatenate(
        [
            np.where(used, e_node, c_node),
            experts[room],
            np.zeros(int((load > 0).sum()), np.int64),
            clusters[served > 0],
            np.full(int(short.sum()), sink),
        ]
    )
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


# --- block by block ---------------------------------------------------------------------


def _spans(n: int, step: int) -> Iterator[slice]:
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


class _Blocks:
    """A problem's experts x clusters quantities, computed one block of rows or columns at
    a time from the affinity: the usable mask, the integer costs (``2**shift`` as in
    ``scale_to_int``), so none is ever held whole."""

    def __init__(self, p: TransportProblem) -> None:
        self.p = p
        n_e, n_c = p.shape
        self.active_e = p.capacity > 0
        self.active_c = p.demand > 0
        self.row_step = max(1, _BLOCK_PAIRS // max(1, n_c))
        self.col_step = max(1, _BLOCK_PAIRS // max(1, n_e))
        self.shift: int | None = None

    def rows(self) -> Iterator[slice]:
        return _spans(self.p.shape[0], self.row_step)

    def cols(self) -> Iterator[slice]:
        return _spans(self.p.shape[1], self.col_step)

    def usable(self, r: slice, c: slice) -> BoolArray:
        out: BoolArray = self.p.allowed[r, c] & self.active_e[r, None] & self.active_c[None, c]
        return out

    def scaled(self, a: FloatArray) -> IntArray:
        """Integer costs of affinities ``a`` (exactly ``best_flow``'s on usable pairs)."""
        if self.shift is None:
            return np.zeros(a.shape, dtype=np.int64)
        out: IntArray = -np.rint(np.ldexp(a, self.shift)).astype(np.int64)
        return out

    def cost(self, r: slice, c: slice, usable: BoolArray) -> IntArray:
        """Integer costs of a block; 0 off ``usable`` (whose affinity may pass the peak)."""
        return self.scaled(np.where(usable, self.p.affinity[r, c], 0.0))

    def pair_cost(self, ei: IntArray, ci: IntArray) -> IntArray:
        return self.scaled(self.p.affinity[ei, ci])


def _blockwise_flow(p: TransportProblem) -> PairAssignment:
    """``best_flow`` without a dense integer matrix: affinity, ``allowed`` and one boolean
    experts x clusters mask of the graph's arcs are the only arrays of that size.

    The same candidates and pricing as ``best_flow`` (the same arcs, in the same order, so
    the same flow), computed block by block. Two differences, since the full graph is
    out of reach at this size: candidates that cannot serve everyone are widened only
    along the cut (``_widen``), and when the pricing rounds run out the last optimum is
    returned with its gap bound instead of solving the full graph.
    """
    n_e, n_c = p.shape
    b = _Blocks(p)
    none = np.zeros(0, dtype=np.int64)
    if int(p.demand.sum()) == 0:
        return PairAssignment(p.shape, none, none, True, _full_graph(0, None, blockwise=True))
    count, peak = 0, 0.0
    for r in b.rows():
        usable = b.usable(r, slice(None))
        count += int(usable.sum())
        peak = max(peak, float(np.abs(np.where(usable, p.affinity[r], 0.0)).max(initial=0.0)))
    if count == 0:
        return PairAssignment(p.shape, none, none, False, _full_graph(0, None, blockwise=True))
    bits = _cost_bits(n_e + n_c + 2)
    while True:
        b.shift = _scale_shift(peak, bits)
        try:
            return _blockwise_solve(b, count)
        except _CostRange:
            if bits <= 24:
                raise RuntimeError("OR-Tools rejected every cost scaling tried") from None
            bits -= 8


def _block_candidates(b: _Blocks, count: int) -> BoolArray | None:
    """``_candidates``, column blocks for the clusters' best, row blocks for the experts'."""
    p = b.p
    n_e, n_c = p.shape
    if count < _SPARSE_MIN_PAIRS:
        return None
    keep = np.zeros((n_e, n_c), dtype=np.bool_)
    every = slice(None)
    mul, add = _SPARSE_PER_CLUSTER
    k = min(n_e, mul * int(p.demand.max()) + add)
    if k < n_e:
        for c in b.cols():
            score = np.where(b.usable(every, c), p.affinity[:, c], -np.inf)
            top = np.argpartition(-score, k - 1, axis=0)[:k]
            keep[top, np.arange(c.start, c.stop)[None, :]] = True
    else:
        keep[:] = True
    mul, add = _SPARSE_PER_EXPERT
    m = min(n_c, mul * int(min(p.capacity.max(), n_c)) + add)
    if m < n_c:
        for r in b.rows():
            score = np.where(b.usable(r, every), p.affinity[r], -np.inf)
            top = np.argpartition(-score, m - 1, axis=1)[:, :m]
            keep[np.arange(r.start, r.stop)[:, None], top] = True
    else:
        keep[:] = True
    for r in b.rows():
        keep[r] &= b.usable(r, every)
    return keep if int(keep.sum()) < _SPARSE_MAX_SHARE * count else None


@dataclass(frozen=True, slots=True)
class _Priced:
    """One pricing pass: the pairs entering, and what it found among the left-out pairs."""

    experts: IntArray
    clusters: IntArray
    negative: int
    most_negative: int
    negative_sum: float  # sum of the negative reduced costs (float: may pass 2**63)


def _blockwise_solve(b: _Blocks, count: int) -> PairAssignment:
    p = b.p
    n_e, n_c = p.shape
    keep = _block_candidates(b, count)
    if keep is None:  # not much sparser: every usable pair is an arc
        keep = np.zeros((n_e, n_c), dtype=np.bool_)
        for r in b.rows():
            keep[r] = b.usable(r, slice(None))
        ei, ci = np.nonzero(keep)
        flows, complete = _solve_pairs(p, ei, ci, b.pair_cost(ei, ci), partial=True)
        found = flows == 1
        certificate = _full_graph(count, b.shift, blockwise=True)
        return PairAssignment(p.shape, ei[found], ci[found], complete, certificate)
    candidate_arcs = int(keep.sum())
    ei, ci = np.nonzero(keep)
    cost = b.pair_cost(ei, ci)
    flows, complete = _solve_pairs(p, ei, ci, cost, partial=True)
    widenings = 0
    while not complete and _widen(b, keep, ei, ci, flows):
        widenings += 1
        ei, ci = np.nonzero(keep)
        cost = b.pair_cost(ei, ci)
        flows, complete = _solve_pairs(p, ei, ci, cost, partial=True)
    k = min(n_e, _PRICING_PER_CLUSTER)
    m = min(n_c, _PRICING_PER_EXPERT)
    rounds = 1
    while True:
        pot_e, pot_c = _pair_potentials(p, ei, ci, cost, flows == 1)
        select = rounds < _PRICING_ROUNDS
        priced = _price(b, keep, pot_e, pot_c, k, m, select=select)
        if priced.negative == 0 or not select:
            break
        keep[priced.experts, priced.clusters] = True
        ei, ci = np.nonzero(keep)
        cost = b.pair_cost(ei, ci)
        flows, complete = _solve_pairs(p, ei, ci, cost, partial=True)
        rounds += 1
    arcs = int(ei.size)
    certificate = PricingCertificate(
        count,
        candidate_arcs,
        arcs,
        rounds,
        widenings,
        count - arcs,
        priced.negative,
        priced.most_negative,
        abs(priced.negative_sum) * _unit(b.shift),
        _unit(b.shift),
        blockwise=True,
    )
    found = flows == 1
    return PairAssignment(p.shape, ei[found], ci[found], complete, certificate)


def _price(
    b: _Blocks,
    keep: BoolArray,
    pot_e: IntArray,
    pot_c: IntArray,
    k: int,
    m: int,
    *,
    select: bool,
) -> _Priced:
    """Reduced costs of every usable pair outside ``keep``, by column blocks: the count,
    the most negative and their sum; with ``select``, each cluster's ``k`` and (a pass
    by row blocks) each expert's ``m`` most negative, exactly as ``_priced_flow`` picks."""
    every = slice(None)
    entering_e: list[IntArray] = []
    entering_c: list[IntArray] = []
    negative, most, total = 0, 0, 0.0
    for c in b.cols():
        usable = b.usable(every, c)
        reduced = b.cost(every, c, usable)
        reduced += pot_e[:, None]
        reduced -= pot_c[None, c]
        neg = reduced < 0
        neg &= usable
        neg &= ~keep[:, c]
        found = int(neg.sum())
        if not found:
            continue
        values = reduced[neg]
        negative += found
        most = min(most, int(values.min()))
        total += float(values.sum(dtype=np.float64))
        if select:
            ranked = np.where(neg, reduced, 0)
            rows = np.argpartition(ranked, k - 1, axis=0)[:k]
            cols = np.broadcast_to(np.arange(c.start, c.stop)[None, :], rows.shape)
            chosen = neg[rows, cols - c.start]
            entering_e.append(rows[chosen])
            entering_c.append(cols[chosen])
    if select and negative:
        for r in b.rows():
            usable = b.usable(r, every)
            reduced = b.cost(r, every, usable)
            reduced += pot_e[r, None]
            reduced -= pot_c[None, :]
            neg = reduced < 0
            neg &= usable
            neg &= ~keep[r]
            if not neg.any():
                continue
            ranked = np.where(neg, reduced, 0)
            cols = np.argpartition(ranked, m - 1, axis=1)[:, :m]
            rows = np.broadcast_to(np.arange(r.start, r.stop)[:, None], cols.shape)
            chosen = neg[rows - r.start, cols]
            entering_e.append(rows[chosen])
            entering_c.append(cols[chosen])
    none = np.zeros(0, dtype=np.int64)
    return _Priced(
        np.concatenate([none, *entering_e]).astype(np.int64),
        np.concatenate([none, *entering_c]).astype(np.int64),
        negative,
        most,
        total,
    )


def _widen(b: _Blocks, keep: BoolArray, ei: IntArray, ci: IntArray, flows: IntArray) -> int:
    """Add arcs across the cut of a maximum flow on ``keep`` that leaves demand unserved.

    S: the nodes the source reaches in the residual graph. A usable pair from an expert in
    S to a cluster outside it is the only way a larger graph can carry more flow; if
    there is none, this flow is maximum for the full problem too (max-flow min-cut) and
    nothing is added. Otherwise each such cluster gets its best few (by affinity) of
    those experts, as many as ``_candidates`` gives a cluster. Returns the arcs added.
    """
    p = b.p
    n_e, n_c = p.shape
    used = flows == 1
    load = np.bincount(ei[used], minlength=n_e)
    in_e = load < np.minimum(p.capacity, n_c)  # source→expert residual arcs
    in_c = np.zeros(n_c, dtype=np.bool_)
    free_e, free_c, used_e, used_c = ei[~used], ci[~used], ei[used], ci[used]
    while True:
        new_c = np.zeros(n_c, dtype=np.bool_)
        new_c[free_c[in_e[free_e]]] = True
        new_c &= ~in_c
        in_c |= new_c
        new_e = np.zeros(n_e, dtype=np.bool_)
        new_e[used_e[in_c[used_c]]] = True
        new_e &= ~in_e
        in_e |= new_e
        if not new_c.any() and not new_e.any():
            break
    rows = np.flatnonzero(in_e & b.active_e)
    targets = np.flatnonzero(~in_c & b.active_c)
    if rows.size == 0 or targets.size == 0:
        return 0
    mul, add = _SPARSE_PER_CLUSTER
    k = min(rows.size, mul * int(p.demand.max()) + add)
    added = 0
    for span in _spans(targets.size, max(1, _BLOCK_PAIRS // rows.size)):
        cols = targets[span]
        block = np.ix_(rows, cols)
        score = np.where(p.allowed[block] & ~keep[block], p.affinity[block], -np.inf)
        top = np.argpartition(-score, k - 1, axis=0)[:k]
        ok = np.isfinite(np.take_along_axis(score, top, axis=0))
        keep[rows[top[ok]], np.broadcast_to(cols[None, :], top.shape)[ok]] = True
        added += int(ok.sum())
    return added


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
    other pair (see ``best_flow``): same optimum, ~10x less work at 1,500 x 600. From
    ``_BLOCKWISE_MIN_PAIRS`` (20 million) pairs on, block by block, the same arcs and flow;
    the dense int64 result is then the largest array: at 20,000 x 20,000 (3.2 GB) use
    ``solve_assignment_pairs``, which returns the pairs and the pricing certificate.

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
    p = validate_problem(affinity, capacity, demand, forbidden)
    x, complete = best_flow(p)
    if not complete:
        raise InfeasibleAssignment(shortfall_groups(p, x))
    return x


def solve_assignment_pairs(
    affinity: npt.ArrayLike,
    capacity: npt.ArrayLike,
    demand: npt.ArrayLike,
    forbidden: npt.ArrayLike | None = None,
) -> PairAssignment:
    """``solve_assignment`` for large instances: the chosen pairs, and the certificate.

    The same optimum, as ``PairAssignment`` (expert and cluster index of each pair) rather
    than a dense int64 matrix, with ``certificate`` (``PricingCertificate``): how many
    usable pairs were left out of the graph solved, that each was priced against its dual
    potentials and none could improve the assignment (or, if the pricing rounds ran out,
    the most negative reduced cost and the gap bound). From ``_BLOCKWISE_MIN_PAIRS`` pairs
    on nothing experts x clusters is held but the float64 affinity (not copied when it is
    float64 already), the allowed mask and the mask of arcs: 20,000 x 20,000 in about 4 GiB
    (docs/performance.md, "Experts"). Same errors as ``solve_assignment``.
    """
    p = validate_problem(affinity, capacity, demand, forbidden)
    found = flow_pairs(p)
    if not found.complete:
        raise InfeasibleAssignment(shortfall_groups(p, found.dense(np.int8)))
    return found
