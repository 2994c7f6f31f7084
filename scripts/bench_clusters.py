#!/usr/bin/env python3
"""Benchmark cluster proposals on planted networks; prints JSON (``--out FILE`` also writes it).

For each planted network (``scripts/planted.py``: thematic groups with a known plan, plus
noise) it reports, for our method and for community detection on the *same* affinity:

* ``ari``: adjusted Rand index against the plan (cities left out count as singletons);
* ``hard_constraints_pct``: share of cluster-level hard-constraint checks passed, judged
  by ``matching.clusters.check_groups`` (size bounds, lead, common language, mixed
  membership, not one country / network); ``valid_clusters_pct``: share of clusters
  that pass every one of them; ``all_hard_constraints_met`` adds capacity;
* ``seconds``: wall time of the call (graph construction included for the baselines).

Methods: ``iccmatch`` (``propose_clusters``, thematic, capacity 1, every theme);
``leidenalg_modularity`` (``leidenalg.find_partition(g, ModularityVertexPartition,
seed=)``); ``networkx_louvain`` (``nx.community.louvain_communities(seed=)``);
``igraph_cpm`` (igraph Leiden with the CPM resolution ``tune_gamma`` gives the whole
affinity, no themes, no repair: what the resolution alone buys).

A second section runs the exact CP-SAT path against the heuristic on small instances
(objective, status, time) and a third times larger networks with a sparse affinity.

Usage::

    .venv/bin/python -m scripts.bench_clusters --out /tmp/bench_clusters.json
    .venv/bin/python -m scripts.bench_clusters --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import resource
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import igraph as ig
import leidenalg
import networkx as nx
import numpy as np
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from matching.clusters import ClusterInput, ClusterParams, check_groups, propose_clusters
from matching.clusters.rules import tune_gamma
from scripts.planted import planted


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "scipy", "igraph", "leidenalg", "networkx", "ortools", "scikit-learn"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def edges(A: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if sp.issparse(A):
        coo = sp.triu(A, k=1).tocoo()
        r, c, w = coo.row, coo.col, coo.data
    else:
        r, c = np.triu_indices(A.shape[0], 1)
        w = A[r, c]
    keep = w > 0
    return r[keep], c[keep], w[keep]


PER_CITY = ("capacity", "excluded")


def pct(statuses: Sequence[Any]) -> float:
    """Share of cluster-level checks passed (per-city checks would swamp the figure)."""
    mine = [s for s in statuses if s.name not in PER_CITY]
    checks = sum(s.satisfied + s.violated for s in mine)
    bad = sum(s.violated for s in mine)
    return round(100.0 * (checks - bad) / checks, 2) if checks else 100.0


def judge(
    inp: ClusterInput, params: ClusterParams, groups: Sequence[Sequence[int]]
) -> dict[str, Any]:
    """Constraint figures for any grouping: checks passed, clusters fully valid, all met."""
    statuses = check_groups(inp, params, groups)
    valid = sum(
        all(s.violated == 0 for s in check_groups(inp, params, [g]) if s.name not in PER_CITY)
        for g in groups
    )
    return {
        "hard_constraints_pct": pct(statuses),
        "valid_clusters_pct": round(100.0 * valid / len(groups), 2) if groups else 100.0,
        "all_hard_constraints_met": all(s.violated == 0 for s in statuses),
    }


def labels_of(groups: Sequence[Sequence[int]], n: int) -> np.ndarray:
    out = np.arange(n) + n  # singletons for anyone left out
    for k, g in enumerate(groups):
        out[list(g)] = k
    return out


def run_ours(inp: ClusterInput, params: ClusterParams) -> tuple[list[list[int]], dict[str, Any]]:
    t = time.perf_counter()
    prop = propose_clusters(inp, params)
    secs = time.perf_counter() - t
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    groups = [[pos[m] for m in c.members] for c in prop.clusters]
    return groups, {
        "seconds": round(secs, 3),
        "method": prop.method,
        "clusters": len(prop.clusters),
        "unassigned": len(prop.unassigned),
        "own_hard_constraints_pct": prop.metrics["hard_constraints_satisfied_pct"],
        "coverage": prop.metrics["coverage"],
        "mean_cohesion": prop.metrics["mean_cohesion"],
    }


def run_leidenalg(A: Any, seed: int) -> tuple[list[list[int]], float]:
    t = time.perf_counter()
    r, c, w = edges(A)
    g = ig.Graph(n=A.shape[0], edges=np.column_stack([r, c]).tolist())
    part = leidenalg.find_partition(
        g, leidenalg.ModularityVertexPartition, weights=w.tolist(), seed=seed
    )
    groups = [list(x) for x in part]
    return groups, time.perf_counter() - t


def run_louvain(A: Any, seed: int) -> tuple[list[list[int]], float]:
    t = time.perf_counter()
    r, c, w = edges(A)
    G = nx.Graph()
    G.add_nodes_from(range(A.shape[0]))
    G.add_weighted_edges_from(zip(r.tolist(), c.tolist(), w.tolist(), strict=True))
    groups = [sorted(x) for x in nx.community.louvain_communities(G, weight="weight", seed=seed)]
    return groups, time.perf_counter() - t


def run_cpm(A: Any, params: ClusterParams, seed: int) -> tuple[list[list[int]], float]:
    t = time.perf_counter()
    gamma = tune_gamma(A, params.min_size, params.max_size)
    r, c, w = edges(A)
    g = ig.Graph(n=A.shape[0], edges=np.column_stack([r, c]).tolist())
    ig.set_random_number_generator(random.Random(seed))
    try:
        part = g.community_leiden(
            objective_function="CPM", weights=w.tolist(), resolution=gamma, n_iterations=-1
        )
    finally:
        ig.set_random_number_generator(random)
    groups = [list(x) for x in part]
    return groups, time.perf_counter() - t


def scenario(
    n: int, noise: float, priority_noise: float, seed: int, baselines: bool
) -> dict[str, Any]:
    p = planted(n, noise=noise, priority_noise=priority_noise, n_themes=12, seed=seed)
    inp = p.inp
    params = ClusterParams(max_themes=len(inp.theme_ids), seed=seed)
    rules = dataclasses.replace(params, themes=None)
    out: dict[str, Any] = {
        "cities": n,
        "noise": noise,
        "priority_noise": priority_noise,
        "seed": seed,
        "planted_groups": int(p.labels.max()) + 1,
    }
    plan = [np.flatnonzero(p.labels == g).tolist() for g in range(int(p.labels.max()) + 1)]
    out["plan"] = judge(inp, rules, plan)
    groups, info = run_ours(inp, params)
    out["iccmatch"] = {
        "ari": round(adjusted_rand_score(p.labels, labels_of(groups, n)), 4),
        **judge(inp, rules, groups),
        **info,
    }
    if baselines:
        for name, fn in (
            ("leidenalg_modularity", lambda: run_leidenalg(inp.affinity, seed)),
            ("networkx_louvain", lambda: run_louvain(inp.affinity, seed)),
            ("igraph_cpm", lambda: run_cpm(inp.affinity, params, seed)),
        ):
            g2, secs = fn()
            sizes = [len(x) for x in g2]
            out[name] = {
                "ari": round(adjusted_rand_score(p.labels, labels_of(g2, n)), 4),
                **judge(inp, rules, g2),
                "seconds": round(secs, 3),
                "communities": len(g2),
                "largest": max(sizes) if sizes else 0,
            }
    return out


def exact_vs_heuristic(seeds: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for seed in seeds:
        p = planted(24, noise=1.2, n_themes=2, seed=seed)
        base = ClusterParams(seed=seed, time_limit_s=5)
        row: dict[str, Any] = {"cities": 24, "themes": 2, "seed": seed}
        for method in ("heuristic", "exact"):
            t = time.perf_counter()
            prop = propose_clusters(p.inp, dataclasses.replace(base, method=method))
            row[method] = {
                "objective": round(prop.objective, 4),
                "method": prop.method,
                "seconds": round(time.perf_counter() - t, 3),
                "clusters": len(prop.clusters),
                "hard_constraints_pct": prop.metrics["hard_constraints_satisfied_pct"],
            }
        row["exact_minus_heuristic"] = round(
            row["exact"]["objective"] - row["heuristic"]["objective"], 4
        )
        rows.append(row)
    return rows


def scaling(sizes: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        t = time.perf_counter()
        p = planted(n, noise=1.0, n_themes=12, seed=1, sparse_k=30)
        row: dict[str, Any] = {
            "cities": n,
            "affinity": "csr, 30 strongest per city",
            "generate_s": round(time.perf_counter() - t, 3),
        }
        for kind in ("thematic", "geographic"):
            params = ClusterParams(
                kind=kind,
                max_themes=12,
                seed=1,  # type: ignore[arg-type]
                allow_single_country=kind == "geographic",
            )
            t = time.perf_counter()
            prop = propose_clusters(p.inp, params)
            secs = time.perf_counter() - t
            pos = {c: i for i, c in enumerate(p.inp.city_ids)}
            groups = [[pos[m] for m in c.members] for c in prop.clusters]
            row[kind] = {
                "seconds": round(secs, 3),
                "clusters": len(prop.clusters),
                "hard_constraints_pct": prop.metrics["hard_constraints_satisfied_pct"],
            }
            if kind == "thematic":
                row[kind]["ari"] = round(adjusted_rand_score(p.labels, labels_of(groups, n)), 4)
        # the process's peak so far (ru_maxrss is KiB on Linux): an upper bound for this size
        row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(row), file=sys.stderr, flush=True)  # long runs: each size as it ends
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--quick", action="store_true", help="300 cities only, one noise level")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[3000],
        help="city counts for the sparse-affinity timing section (e.g. 3000 10000 100000)",
    )
    ap.add_argument("--scale-only", action="store_true", help="skip the planted and exact sections")
    a = ap.parse_args()
    grid = [
        (300, 0.6, 0.0),
        (300, 1.0, 0.0),
        (300, 1.4, 0.0),
        (300, 1.0, 0.1),
        (1000, 0.6, 0.0),
        (1000, 1.0, 0.0),
        (1000, 1.4, 0.0),
        (1000, 1.0, 0.1),
    ]
    if a.quick:
        grid = [(300, 1.0, 0.0)]
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "machine": machine(),
        "params": {
            "min_size": 4,
            "max_size": 8,
            "capacity": 1,
            "themes": 12,
            "lead_min_strength": 70,
        },
        "planted": []
        if a.scale_only
        else [scenario(n, noise, pn, a.seed, baselines=True) for n, noise, pn in grid],
        "exact_vs_heuristic": []
        if a.scale_only
        else exact_vs_heuristic([11, 12, 13] if a.quick else [11, 12, 13, 14, 15]),
        "scaling": scaling([] if a.quick else a.scale),
    }
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out is not None:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
