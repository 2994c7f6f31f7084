#!/usr/bin/env python
"""Benchmark the expert-assignment solvers; prints one JSON document.

For each size (default 1,500 x 600 and 1,000 x 500): a dense random instance with a fixed
seed (affinities uniform in [-1, 1), capacity 1-4, demand 1-3, total demand within total
capacity), solved by ``solve_assignment`` and by ``scipy.optimize.linprog(method="highs")``
on the same LP in the same process: median wall time of ``--fast-repeats`` runs of ours
(after one warm-up) and of ``--repeats`` linprog runs (sparse matrix build included,
and reported apart), their ratio, and whether the objectives agree. Then
``solve_fair_assignment`` at a smaller size (default 200 x 60), on a dense instance and
a tight one (capacity 1, 20% of pairs forbidden). Machine info and the load average at
start are included: timings on a busy machine are noisy.

    .venv/bin/python -m scripts.bench_experts [--out FILE] [--repeats 3] [--fast-repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ortools
import scipy
from scipy import sparse
from scipy.optimize import linprog

from matching.experts import (
    cluster_mean_affinity,
    solve_assignment,
    solve_fair_assignment,
)


def instance(n_e: int, n_c: int, seed: int, *, tight: bool = False) -> tuple[Any, ...]:
    """Dense: every pair allowed. Tight: capacity 1 and 20% of pairs forbidden, so
    clusters compete for the same experts and the fair optimum needs CP-SAT."""
    rng = np.random.default_rng(seed)
    affinity = rng.uniform(-1.0, 1.0, size=(n_e, n_c))
    capacity = np.ones(n_e, dtype=np.int64) if tight else rng.integers(1, 5, size=n_e)
    demand = rng.integers(1, 4, size=n_c)
    forbidden = rng.random((n_e, n_c)) < 0.2 if tight else None
    assert demand.sum() <= capacity.sum(), "instance must be feasible"
    return affinity, capacity, demand, forbidden


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def linprog_solve(affinity: np.ndarray, capacity: np.ndarray, demand: np.ndarray) -> dict[str, Any]:
    """The same LP for HiGHS: max sum a*x, row sums <= capacity, column sums == demand."""
    n_e, n_c = affinity.shape
    start = time.perf_counter()
    n = n_e * n_c
    cols = np.arange(n)
    rows_e, rows_c = np.divmod(cols, n_c)
    a_ub = sparse.csr_matrix((np.ones(n), (rows_e, cols)), shape=(n_e, n))
    a_eq = sparse.csr_matrix((np.ones(n), (rows_c, cols)), shape=(n_c, n))
    built = time.perf_counter()
    res = linprog(
        -affinity.ravel(),
        A_ub=a_ub,
        b_ub=capacity,
        A_eq=a_eq,
        b_eq=demand,
        bounds=(0, 1),
        method="highs",
    )
    done = time.perf_counter()
    assert res.status == 0, res.message
    return {
        "objective": float(-res.fun),
        "integral": bool(np.allclose(res.x, np.round(res.x), atol=1e-6)),
        "build_s": built - start,
        "solve_s": done - built,
    }


def bench_size(
    n_e: int, n_c: int, seed: int, repeats: int, fast_repeats: int, lp_max_pairs: int
) -> dict[str, Any]:
    affinity, capacity, demand, _ = instance(n_e, n_c, seed)
    solve_assignment(affinity, capacity, demand)  # warm-up: library loading, page faults
    ours_s, ours_runs, x = timed(lambda: solve_assignment(affinity, capacity, demand), fast_repeats)
    if n_e * n_c > lp_max_pairs:  # scale points: the LP would take minutes to hours
        return {
            "experts": n_e,
            "clusters": n_c,
            "pairs": n_e * n_c,
            "solve_assignment_s": round(ours_s, 4),
            "solve_assignment_runs_s": [round(t, 4) for t in ours_runs],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "linprog": f"skipped above {lp_max_pairs:,} pairs",
        }
    runs = [linprog_solve(affinity, capacity, demand) for _ in range(repeats)]
    lp_total = statistics.median(r["build_s"] + r["solve_s"] for r in runs)
    lp_solve = statistics.median(r["solve_s"] for r in runs)
    ours_obj = float((affinity * x).sum())
    lp_obj = runs[0]["objective"]
    return {
        "experts": n_e,
        "clusters": n_c,
        "pairs": n_e * n_c,
        "total_demand": int(demand.sum()),
        "total_capacity": int(capacity.sum()),
        "solve_assignment_s": round(ours_s, 4),
        "solve_assignment_runs_s": [round(t, 4) for t in ours_runs],
        "linprog_highs_s": round(lp_total, 4),
        "linprog_highs_solve_only_s": round(lp_solve, 4),
        "linprog_highs_runs_s": [round(r["build_s"] + r["solve_s"], 4) for r in runs],
        "speedup": round(lp_total / ours_s, 1),
        "speedup_vs_solve_only": round(lp_solve / ours_s, 1),
        "objective": ours_obj,
        "linprog_objective": lp_obj,
        "objective_abs_diff": abs(ours_obj - lp_obj),
        "objectives_equal": abs(ours_obj - lp_obj) <= 1e-9 * (1 + abs(lp_obj)),
        "linprog_solution_integral": runs[0]["integral"],
    }


def bench_fair(n_e: int, n_c: int, seed: int, repeats: int, tight: bool) -> dict[str, Any]:
    affinity, capacity, demand, forbidden = instance(n_e, n_c, seed, tight=tight)
    plain = solve_assignment(affinity, capacity, demand, forbidden)
    fair_s, runs, fair = timed(
        lambda: solve_fair_assignment(affinity, capacity, demand, forbidden, seed=seed), repeats
    )
    return {
        "experts": n_e,
        "clusters": n_c,
        "instance": "tight: capacity 1, 20% of pairs forbidden" if tight else "dense, capacity 1-4",
        "solve_fair_assignment_s": round(fair_s, 4),
        "runs_s": [round(t, 4) for t in runs],
        "worst_cluster_mean_plain": float(cluster_mean_affinity(affinity, plain, demand).min()),
        "worst_cluster_mean_fair": float(cluster_mean_affinity(affinity, fair, demand).min()),
        "total_plain": float((affinity * plain).sum()),
        "total_fair": float((affinity * fair).sum()),
    }


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "ortools": ortools.__version__,
    }


def parse_size(text: str) -> tuple[int, int]:
    e, c = text.lower().split("x")
    return int(e), int(c)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--repeats", type=int, default=3, help="linprog runs (median)")
    parser.add_argument(
        "--fast-repeats",
        type=int,
        default=7,
        help="solve_assignment runs (median), after a warm-up",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="1500x600,1000x500", help="EXPERTSxCLUSTERS,...")
    parser.add_argument("--fair-size", default="200x60", help="EXPERTSxCLUSTERS")
    parser.add_argument(
        "--lp-max-pairs",
        type=int,
        default=2_000_000,
        help="run the HiGHS baseline only up to this many expert-cluster pairs",
    )
    args = parser.parse_args(argv)

    report: dict[str, Any] = {
        "machine": machine(),
        "seed": args.seed,
        "repeats": {"linprog": args.repeats, "solve_assignment": args.fast_repeats},
    }
    report["assignment"] = [
        bench_size(*parse_size(s), args.seed, args.repeats, args.fast_repeats, args.lp_max_pairs)
        for s in args.sizes.split(",")
    ]
    fair_e, fair_c = parse_size(args.fair_size)
    report["fair_assignment"] = [
        bench_fair(fair_e, fair_c, args.seed, args.fast_repeats, tight) for tight in (False, True)
    ]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
