#!/usr/bin/env python3
"""Partner suggestions on real twin towns: held-out ties recovered, against baselines.

Why: the sample's ~250 ties are too few to tell methods apart, and generated networks
share ideas with the score. Wikidata's sister cities of 25 EU countries (2017; see
shared/data/sistercities-wikidata-2017/README.md) are ~12,000 cities and ~15,000 real
ties nobody here chose. This converts them (scripts/sistercities.py) in a temporary
folder, ingests them into a temporary SQLite store through the real ingest path, builds
the snapshot and its arrays, and runs ``matching.partners.evaluate.evaluate_partners``:
5 splits (``--quick``: 2) each hiding 10% of the ties, every hidden tie asked for from
both ends, hits@10 and MRR with standard errors for all held-out ties and for those with
and without a common neighbour, and time per method (fit, per query).

The source has no profile texts, themes or Index scores: profiles are an empty (n, 0)
array (the similarity term is 0 for every pair, as ``pair_features`` does without
embeddings), and the score model works from languages, distance, country and graph.

    .venv/bin/python -m scripts.bench_partners_real [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from graph.snapshot import NetworkSnapshot
from graph.sqlite_store import SqliteStore
from ingest.load import ingest_path
from matching.kernel.arrays import encode
from matching.partners.evaluate import Method, evaluate_partners, standard_methods
from scripts import sistercities


def rounded(value: Any) -> Any:
    """Floats to 4 significant decimals, all the way down."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def real_snapshot(
    source: Path, timings: dict[str, float]
) -> tuple[NetworkSnapshot, dict[str, Any]]:
    """The converted source, through ingest and the store, as a snapshot."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = sistercities.write_dataset(Path(tmp) / "data", source)
        timings["convert_s"] = time.perf_counter() - start
        start = time.perf_counter()
        store = SqliteStore(f"sqlite:///{tmp}/sistercities.db")
        try:
            ingested = ingest_path(Path(tmp) / "data", store)
            if not ingested.ok:
                raise SystemExit(f"the converted data did not ingest: {ingested.errors[:3]}")
            snapshot = store.snapshot()
        finally:
            store.close()
        timings["ingest_s"] = time.perf_counter() - start
    return snapshot, report


def scale(
    fit_cities: int, fit_ties: int, query_cities: int, repeats: int, seed: int
) -> dict[str, Any]:
    """The learned ranker's cost on generated networks (netgen: themes, Index scores and
    random 384-d profile vectors, so every feature is live): fitting at ``fit_cities`` with
    ``fit_ties`` ties kept at random, and one partner query from a warm revision (model
    and index built, as the service does) at ``query_cities``, p50/p95 over ``repeats``
    random cities, beside the default-weights query on the same index."""
    from graph.model import Kind, from_props
    from graph.snapshot import build_snapshot
    from matching.partners import partner_index, suggest_partners
    from matching.partners.learned import fit_partner_model
    from scripts import netgen

    def network(n: int, ties: int | None) -> tuple[Any, Any]:
        data = netgen.generate(n, seed)
        if ties is not None:
            rng = random.Random(seed)
            data["partnerships"] = rng.sample(
                data["partnerships"], min(ties, len(data["partnerships"]))
            )
        rows = {Kind(k): [from_props(Kind(k), r) for r in v] for k, v in data.items()}
        arr = encode(build_snapshot(0, rows))
        emb = np.random.default_rng(seed).standard_normal((n, 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return arr, emb

    out: dict[str, Any] = {}
    arr, emb = network(fit_cities, fit_ties)
    start = time.perf_counter()
    model, note = fit_partner_model(arr, emb, seed=seed)
    out["fit"] = {
        "cities": arr.n,
        "ties": len(arr.tie_kinds),
        "seconds": time.perf_counter() - start,
        "ranker": note,
        "weights": model.ranker.weights() if model else None,
    }
    arr, emb = network(query_cities, None)
    model, note = fit_partner_model(arr, emb, seed=seed)
    index = partner_index(arr, emb)
    rng = np.random.default_rng(seed)
    cities = [arr.city_ids[int(i)] for i in rng.choice(arr.n, size=repeats)]
    suggest_partners(arr, emb, cities[0], index=index, model=model)  # warm up
    for name, m in (("learned", model), ("default weights", None)):
        times = []
        for c in cities:
            t = time.perf_counter()
            suggest_partners(arr, emb, c, k=10, index=index, model=m)
            times.append((time.perf_counter() - t) * 1000)
        out[f"query_ms_{name.replace(' ', '_')}"] = {
            "cities": arr.n,
            "ties": len(arr.tie_kinds),
            "p50": float(np.percentile(times, 50)),
            "p95": float(np.percentile(times, 95)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 splits instead of 5")
    parser.add_argument(
        "--scale-only",
        action="store_true",
        help="only the fit and query costs on generated networks (20,000 / 10,000 cities)",
    )
    parser.add_argument("--splits", type=int, help="override the number of splits")
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", type=Path, default=sistercities.SOURCE)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    splits = args.splits or (2 if args.quick else 5)
    load_before = os.getloadavg()
    if args.scale_only:
        doc = {
            "scale": scale(20_000, 30_000, 10_000, 100, args.seed),
            "load_average_before_after": [load_before, os.getloadavg()],
        }
        print(json.dumps(rounded(doc), indent=2))
        if args.out:
            args.out.write_text(json.dumps(rounded(doc), indent=2) + "\n", encoding="utf-8")
        return
    timings: dict[str, float] = {}
    snapshot, dataset = real_snapshot(args.source, timings)
    start = time.perf_counter()
    arr = encode(snapshot)
    profiles = np.zeros((arr.n, 0), dtype=np.float32)  # no profile texts in the source
    timings["encode_s"] = time.perf_counter() - start

    methods: list[Method] = standard_methods(args.seed)  # default weights, baselines, learned

    start = time.perf_counter()
    result = evaluate_partners(
        arr, profiles, methods, holdout=args.holdout, splits=splits, k=args.k, seed=args.seed
    )
    timings["evaluate_s"] = time.perf_counter() - start
    evaluation = dataclasses.asdict(result)
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "dataset": dataset,
        "network": {"cities": arr.n, "ties": result.ties, "countries": len(set(arr.countries))},
        "evaluation": {k: v for k, v in evaluation.items() if k != "methods"},
        "methods": {
            m["name"]: {k: v for k, v in m.items() if k != "name"} for m in evaluation["methods"]
        },
        "timings": timings,
        "load_average_before_after": [load_before, os.getloadavg()],
    }
    text = json.dumps(rounded(doc), indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
