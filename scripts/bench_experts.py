#!/usr/bin/env python
"""Benchmark the expert-assignment solvers; prints one JSON document.

For each size (default 1,500 x 600 and 1,000 x 500): a dense random instance with a fixed
seed (affinities uniform in [-1, 1), capacity 1-4, demand 1-3, total demand within total
capacity), solved by ``solve_assignment`` and by ``scipy.optimize.linprog(method="highs")``
on the same LP in the same process: median wall time of ``--fast-repeats`` runs of ours
(after one warm-up) and of ``--repeats`` linprog runs (sparse matrix build included,
and reported apart), their ratio, and whether the objectives agree. Then
``solve_fair_assignment`` at a smaller size (default 200 x 60), on a dense instance and
a tight one (capacity 1, 20% of pairs forbidden). Then the travel term on a synthetic
worldwide network (``--travel-size``, default 1,500 experts x 600 clusters of 4-8 member
cities, half of them regional, half spread over the world, one theme each): the time to
compute the travel inputs (the distance to the members, against the centroid distance of
the first version) and, for both affinities, the assignment's total, how many pairs have
no expertise in their cluster's theme (and how many of those while a qualified, allowed
expert had spare capacity), the mean distance the chosen experts travel to members, and
their mean theme level and profile similarity (what travel is traded against).
Machine info and the load average at start are included: timings on a busy machine are
noisy.

With ``--scale SIZE[:PATH],...`` only scale points are run, each in a child process of its
own (so ``ru_maxrss`` is that size's peak alone): the random instance of ``instance()``
solved once by ``solve_assignment_pairs``, with the time to make the instance and to
solve it, the peak RSS after making it and after solving, the candidate arcs, pricing
rounds, priced pairs and the certificate, the objective, a digest of the pairs, and the
load average before and after. PATH forces ``dense`` or ``blockwise`` (default: what the
solver picks for the size). ``--inputs-scale`` measures the affinity inputs the same way
(``member_travel_km`` and ``build_affinity`` on the synthetic travel network).

    .venv/bin/python -m scripts.bench_experts [--out FILE] [--repeats 3] [--fast-repeats 7]
    nice -n 10 .venv/bin/python -m scripts.bench_experts --scale 4000x4000:dense,4000x4000:blockwise
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
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
    AffinityWeights,
    ExpertClusterData,
    build_affinity,
    cluster_mean_affinity,
    flow,
    member_travel_km,
    solve_assignment,
    solve_fair_assignment,
)
from matching.experts.flow import solve_assignment_pairs
from matching.kernel.geometry import distance_matrix_km, spherical_centroids


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


def travel_network(n_e: int, n_c: int, seed: int) -> dict[str, Any]:
    """Cities, clusters (half regional, half worldwide) and experts placed on the sphere."""
    rng = np.random.default_rng(seed)
    n_cities, n_themes = 10 * n_c, 10
    lat = np.degrees(np.arcsin(rng.uniform(-0.9, 0.9, n_cities)))
    lon = rng.uniform(-180, 180, n_cities)
    members: list[list[int]] = []
    for c in range(n_c):
        size = int(rng.integers(4, 9))
        if c % 2:  # worldwide: any cities
            members.append(rng.choice(n_cities, size, replace=False).tolist())
        else:  # regional: the cities nearest a random one
            centre = int(rng.integers(n_cities))
            near = np.argsort(distance_matrix_km(lat[[centre]], lon[[centre]], lat, lon)[0])
            members.append(near[:size].tolist())
    levels = np.zeros((n_e, n_themes))
    for e in range(n_e):
        levels[e, rng.choice(n_themes, int(rng.integers(1, 3)), replace=False)] = rng.integers(
            1, 6, 1
        )
    themes = np.zeros((n_c, n_themes))
    themes[np.arange(n_c), rng.integers(0, n_themes, n_c)] = 1.0
    return {
        "city_lat": lat,
        "city_lon": lon,
        "members": members,
        "expert_lat": np.degrees(np.arcsin(rng.uniform(-0.9, 0.9, n_e))),
        "expert_lon": rng.uniform(-180, 180, n_e),
        "levels": levels,
        "themes": themes,
        "similarity": rng.uniform(0.0, 0.5, (n_e, n_c)),
        "capacity": rng.integers(1, 4, n_e),
        "demand": np.ones(n_c, dtype=np.int64),
    }


def travel_data(
    net: dict[str, Any], distance_km: Any, farthest_km: Any = None
) -> ExpertClusterData:
    """The travel network's affinity inputs, with one choice of distance."""
    n_e, n_c = net["levels"].shape[0], net["themes"].shape[0]
    return ExpertClusterData(
        similarity=net["similarity"],
        expert_levels=net["levels"],
        cluster_themes=net["themes"],
        theme_names=[f"t{t}" for t in range(net["themes"].shape[1])],
        expert_languages=np.ones((n_e, 0), dtype=bool),
        cluster_language=np.full(n_c, -1),
        language_names=[],
        distance_km=distance_km,
        farthest_km=farthest_km,
    )


def bench_travel(n_e: int, n_c: int, seed: int, repeats: int) -> dict[str, Any]:
    """The first version's travel term (to the centroid, uncapped, no expertise bonus)
    against the current one (to the members), on the same synthetic network."""
    net = travel_network(n_e, n_c, seed)
    e_lat, e_lon = net["expert_lat"], net["expert_lon"]

    def centroid_km() -> Any:
        c_lat, c_lon = spherical_centroids(net["city_lat"], net["city_lon"], net["members"])
        return distance_matrix_km(e_lat, e_lon, c_lat, c_lon)

    def members_km() -> Any:
        return member_travel_km(e_lat, e_lon, net["city_lat"], net["city_lon"], net["members"])

    centroid_s, _, to_centre = timed(centroid_km, repeats)
    members_s, _, (mean_km, far_km, _) = timed(members_km, repeats)
    out: dict[str, Any] = {
        "experts": n_e,
        "clusters": n_c,
        "cities": len(net["city_lat"]),
        "travel_inputs_s": {"centroid": round(centroid_s, 4), "members": round(members_s, 4)},
    }
    variants = {
        "centroid (first version)": (
            to_centre,
            AffinityWeights(travel_cap_km=20100.0, expertise_over_travel=False),
        ),
        "members (now)": (mean_km, AffinityWeights()),
    }
    for label, (distance, weights) in variants.items():
        data = travel_data(net, distance)
        aff = build_affinity(data, weights)
        solve_s, _, x = timed(
            lambda aff=aff: solve_assignment(aff.score, net["capacity"], net["demand"]), repeats
        )
        qualified = aff.best_level > 0
        spare = net["capacity"] - x.sum(axis=1) > 0
        unqualified = (x == 1) & ~qualified
        passed_over = unqualified & (qualified & spare[:, None]).any(axis=0)[None, :]
        out[label] = {
            "objective": round(float((aff.score * x).sum()), 4),
            "solve_s": round(solve_s, 4),
            "pairs": int(x.sum()),
            "pairs_without_theme_expertise": int(unqualified.sum()),
            "of_which_a_qualified_expert_had_spare_capacity": int(passed_over.sum()),
            "mean_km_to_members_of_chosen_pairs": round(float(mean_km[x == 1].mean())),
            "mean_km_to_farthest_member_of_chosen_pairs": round(float(far_km[x == 1].mean())),
            "mean_theme_level_of_chosen_pairs": round(float(aff.best_level[x == 1].mean()), 2),
            "mean_similarity_of_chosen_pairs": round(float(net["similarity"][x == 1].mean()), 3),
        }
    return out


def peak_rss_mib() -> float:
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def scale_point(n_e: int, n_c: int, seed: int, path: str) -> dict[str, Any]:
    """One scale point, solved once, in this process (see the module docstring)."""
    if path == "dense":
        flow._BLOCKWISE_MIN_PAIRS = 2**62
    elif path == "blockwise":
        flow._BLOCKWISE_MIN_PAIRS = 0
    out: dict[str, Any] = {"experts": n_e, "clusters": n_c, "pairs": n_e * n_c}
    out["load_before"] = load()
    start = time.perf_counter()
    affinity, capacity, demand, _ = instance(n_e, n_c, seed)
    made = time.perf_counter()
    out["instance_s"] = round(made - start, 2)
    out["peak_rss_instance_mib"] = peak_rss_mib()
    found = solve_assignment_pairs(affinity, capacity, demand)
    out["solve_s"] = round(time.perf_counter() - made, 2)
    out["peak_rss_mib"] = peak_rss_mib()
    out["load_after"] = load()
    cert = found.certificate
    out["path"] = "blockwise" if cert.blockwise else "dense"
    out["total_demand"] = int(demand.sum())
    out["assigned_pairs"] = int(found.experts.size)
    out["valid"] = bool(
        (np.bincount(found.clusters, minlength=n_c) == demand).all()
        and (np.bincount(found.experts, minlength=n_e) <= capacity).all()
        and np.unique(found.experts * n_c + found.clusters).size == found.experts.size
    )
    out["objective"] = float(affinity[found.experts, found.clusters].sum())
    out["pairs_digest"] = hashlib.sha1(
        found.experts.tobytes() + found.clusters.tobytes()
    ).hexdigest()[:16]
    out["certificate"] = cert.as_dict()
    return out


def inputs_point(n_e: int, n_c: int, seed: int) -> dict[str, Any]:
    """The affinity inputs at one size (travel network, member distances, affinity)."""
    out: dict[str, Any] = {"experts": n_e, "clusters": n_c, "load_before": load()}
    start = time.perf_counter()
    net = travel_network(n_e, n_c, seed)
    made = time.perf_counter()
    out["network_s"] = round(made - start, 2)
    out["peak_rss_network_mib"] = peak_rss_mib()
    mean_km, far_km, _ = member_travel_km(
        net["expert_lat"], net["expert_lon"], net["city_lat"], net["city_lon"], net["members"]
    )
    travel = time.perf_counter()
    out["member_travel_km_s"] = round(travel - made, 2)
    data = travel_data(net, mean_km, far_km)
    build_affinity(data, AffinityWeights())
    out["build_affinity_s"] = round(time.perf_counter() - travel, 2)
    out["peak_rss_mib"] = peak_rss_mib()
    out["peak_rss_bytes_per_pair"] = round(out["peak_rss_mib"] * 2**20 / (n_e * n_c), 1)
    out["load_after"] = load()
    return out


def in_child(flag: str, value: str, seed: int) -> dict[str, Any]:
    """Run one point in a fresh interpreter, so its peak RSS is its own."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench_experts", flag, value, "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"point": value, "failed": done.returncode, "stderr": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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
    parser.add_argument("--travel-size", default="1500x600", help="EXPERTSxCLUSTERS")
    parser.add_argument(
        "--lp-max-pairs",
        type=int,
        default=2_000_000,
        help="run the HiGHS baseline only up to this many expert-cluster pairs",
    )
    parser.add_argument(
        "--scale",
        help="only scale points, each in a child process: EXPERTSxCLUSTERS[:dense|blockwise],...",
    )
    parser.add_argument(
        "--inputs-scale", help="with --scale: also the affinity inputs at EXPERTSxCLUSTERS,..."
    )
    parser.add_argument("--scale-one", help=argparse.SUPPRESS)  # EXPERTSxCLUSTERS[:PATH]
    parser.add_argument("--inputs-one", help=argparse.SUPPRESS)  # EXPERTSxCLUSTERS
    args = parser.parse_args(argv)

    if args.scale_one or args.inputs_one:  # a child: one point, JSON on stdout
        if args.scale_one:
            size, _, path = args.scale_one.partition(":")
            point = scale_point(*parse_size(size), args.seed, path or "auto")
        else:
            point = inputs_point(*parse_size(args.inputs_one), args.seed)
        print(json.dumps(point))
        return
    if args.scale:
        scale: dict[str, Any] = {"machine": machine(), "seed": args.seed}
        scale["scale"] = [in_child("--scale-one", s, args.seed) for s in args.scale.split(",")]
        if args.inputs_scale:
            scale["inputs_scale"] = [
                in_child("--inputs-one", s, args.seed) for s in args.inputs_scale.split(",")
            ]
        scale["load_average_at_end"] = load()
        text = json.dumps(scale, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n")
        return

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
    report["travel"] = bench_travel(*parse_size(args.travel_size), args.seed, args.repeats)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
