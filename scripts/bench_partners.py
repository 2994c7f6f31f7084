#!/usr/bin/env python3
"""Partner suggestions: quality against baselines, and speed. Prints one JSON document.

Quality (link prediction, 10 random splits of the sample, means and splits won in
``sample_mean``): hide 20% of the ties, rank every other city for both ends of
each hidden tie, and report hits@10 and MRR for iccmatch's score and for three baselines
on the same split: Adamic-Adar on the visible ties, nearest city, and random order.
- ``sample``: the real ICC sample (data/sample), real ties (twin towns, URBACT networks),
  profiles embedded with the packaged model (cached in a temporary store).
- ``generated``: a netgen network whose ties are re-drawn from a latent model (shared
  priorities, distance, language, plus triadic closure), without embeddings. The
  generator shares ideas with the score, so treat it as a sanity check, not as evidence.

Speed: one partner query (top 10, no filters) from a warm snapshot at 10,000 and 100,000
generated cities with random unit vectors, p50/p95 over repeated queries; beside it the
same queries with every city scored in full (no pruning; the lists must be the same), how
many profile vectors the pruning read, and a plain numpy cosine top-10 for scale.

    .venv/bin/python -m scripts.bench_partners [--quick] [--out FILE]
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

from graph.model import Kind, Partnership, from_props
from graph.snapshot import NetworkSnapshot, build_snapshot
from graph.sqlite_store import SqliteStore
from ingest.load import ingest_path
from matching.kernel.arrays import NetworkArrays, encode
from matching.kernel.embeddings import default_encoder, embed
from matching.kernel.features import pair_features
from matching.kernel.geometry import haversine_km
from matching.kernel.texts import city_profiles
from matching.partners import partner_index, suggest_partners, total_score

ROOT = Path(__file__).resolve().parents[1]


def _ranks(scores: np.ndarray, exclude: np.ndarray, target: int) -> int:
    """1-based rank of ``target`` among non-excluded candidates (ties count pessimistically half)."""
    s = np.where(exclude, -np.inf, scores)
    higher = int((s > s[target]).sum())
    equal = int((s == s[target]).sum()) - 1
    return higher + equal // 2 + 1


def evaluate(
    snapshot: NetworkSnapshot, emb: np.ndarray, seed: int, hide: float = 0.2
) -> dict[str, Any]:
    rng = random.Random(seed)
    ties = list(snapshot.partnerships)
    pairs = sorted({(p.city_a, p.city_b) for p in ties})
    rng.shuffle(pairs)
    hidden = set(pairs[: int(len(pairs) * hide)])
    visible = tuple(p for p in ties if (p.city_a, p.city_b) not in hidden)
    arr = encode(dataclasses.replace(snapshot, partnerships=visible))
    nprng = np.random.default_rng(seed)
    methods = ("iccmatch", "iccmatch_top10_list", "adamic_adar", "nearest", "random")
    hits = {m: 0 for m in methods}
    rr = {m: 0.0 for m in methods}
    queries = 0
    for a, b in sorted(hidden):
        for src, dst in ((a, b), (b, a)):
            i, j = arr.index[src], arr.index[dst]
            f = pair_features(arr, emb, np.array([i]))
            exclude = f.tied[0].copy()
            exclude[i] = True
            scores = {
                "iccmatch": total_score(f, arr.country_codes)[0],
                "adamic_adar": f.adamic_adar[0],
                "nearest": -f.distance_km[0],
                "random": nprng.random(arr.n),
            }
            for m, s in scores.items():
                r = _ranks(s, exclude, j)
                hits[m] += r <= 10
                rr[m] += 1.0 / r
            listed = [x.city_id for x in suggest_partners(arr, emb, src, k=10).suggestions]
            hits["iccmatch_top10_list"] += dst in listed
            rr["iccmatch_top10_list"] += 1.0 / (listed.index(dst) + 1) if dst in listed else 0.0
            queries += 1
    return {
        "cities": arr.n,
        "ties": len(pairs),
        "hidden": len(hidden),
        "queries": queries,
        "hits_at_10": {m: round(hits[m] / queries, 4) for m in methods},
        "mrr": {m: round(rr[m] / queries, 4) for m in methods},
    }


def summary(splits: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the splits, and on how many splits iccmatch beat each baseline.

    The sample has about 250 ties, so one split hides about 50 and a single split's MRR
    moves by a few hundredths: only the mean over many splits says who is ahead.
    """
    out: dict[str, Any] = {"splits": len(splits)}
    for metric in ("hits_at_10", "mrr"):
        methods = splits[0][metric]
        out[metric] = {m: round(float(np.mean([s[metric][m] for s in splits])), 4) for m in methods}
        out[f"{metric}_splits_won"] = {
            m: sum(s[metric]["iccmatch"] > s[metric][m] for s in splits)
            for m in methods
            if m.startswith(("adamic", "nearest", "random"))
        }
    return out


def sample_snapshot() -> tuple[NetworkSnapshot, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"sqlite:///{tmp}/s.db")
        report = ingest_path(ROOT / "data" / "sample", store)
        assert report.ok, report.errors[:3]
        snap = store.snapshot()
        emb = embed(city_profiles(snap), default_encoder(), store)
        store.close()
    return snap, emb


def generated_snapshot(n: int, seed: int) -> NetworkSnapshot:
    """netgen cities with ties re-drawn from a latent model (see the module docstring)."""
    from scripts import netgen

    data = netgen.generate(n, seed)
    rows = {
        Kind(k): [from_props(Kind(k), r) for r in v] for k, v in data.items() if k != "partnerships"
    }
    snap = build_snapshot(0, rows)
    arr = encode(snap)
    rng = np.random.default_rng(seed)
    pri = (arr.priority > 0).astype(float)
    lang = arr.languages.astype(float)
    pairs: set[tuple[int, int]] = set()
    for i in range(n):
        shared = pri[i] @ pri.T
        same_lang = (lang[i] @ lang.T) > 0
        dist = haversine_km(arr.lat[i], arr.lon[i], arr.lat, arr.lon)
        logit = 1.2 * shared + 1.0 * same_lang - dist / 800.0
        logit[i] = -np.inf
        p = np.exp(logit - logit.max())
        p /= p.sum()
        for j in rng.choice(n, size=3, replace=False, p=p):
            pairs.add((min(i, int(j)), max(i, int(j))))
    adj: dict[int, set[int]] = {}
    for a, b in pairs:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    for a in range(n):  # triadic closure: one friend of a friend per city
        friends = sorted(adj.get(a, ()))
        if len(friends) >= 2:
            x, y = rng.choice(friends, size=2, replace=False)
            pairs.add((min(int(x), int(y)), max(int(x), int(y))))
    ids = arr.city_ids
    ties = tuple(Partnership(ids[a], ids[b], "project") for a, b in sorted(pairs))
    return dataclasses.replace(snap, partnerships=ties)


def speed(n: int, seed: int, repeats: int) -> dict[str, Any]:
    """One query from a warm snapshot: the per-snapshot layout is built first (as the service
    does once per revision), then ``repeats`` random cities are asked, with the exact
    pruning (the default) and with every city scored in full (``prune=False``), which must
    give the same lists."""
    from matching.partners import suggest as partners
    from scripts import netgen

    data = netgen.generate(n, seed)
    rows = {Kind(k): [from_props(Kind(k), r) for r in v] for k, v in data.items()}
    arr: NetworkArrays = encode(build_snapshot(0, rows))
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t = time.perf_counter()
    index = partner_index(arr, emb)
    index_s = time.perf_counter() - t
    cities = [arr.city_ids[int(i)] for i in rng.choice(n, size=repeats)]
    suggest_partners(arr, emb, cities[0], index=index)  # warm up
    times, full_times, candidates, same = [], [], [], 0
    for c in cities:
        t = time.perf_counter()
        got = suggest_partners(arr, emb, c, k=10, index=index)
        times.append((time.perf_counter() - t) * 1000)
    for c in cities[:50]:
        t = time.perf_counter()
        full = suggest_partners(arr, emb, c, k=10, index=index, prune=False)
        full_times.append((time.perf_counter() - t) * 1000)
        got = suggest_partners(arr, emb, c, k=10, index=index)
        same += [x.city_id for x in got.suggestions] == [x.city_id for x in full.suggestions]
        i = arr.index[c]
        graph = partners._graph(index, i)
        ok = partners._pool(index, i, partners.PartnerFilters(), None, graph)
        candidates.append(
            len(partners._candidates(index, i, ok, None, graph, partners.PartnerWeights(), 50))
        )
    numpy_top10 = []
    for c in cities[:20]:
        t = time.perf_counter()
        s = emb @ emb[arr.index[c]]
        np.argpartition(-s, 10)[:10]
        numpy_top10.append((time.perf_counter() - t) * 1000)
    return {
        "cities": n,
        "queries": len(times),
        "index_build_s": round(index_s, 3),
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "every_city_scored_p50_ms": round(float(np.percentile(full_times, 50)), 2),
        "profile_vectors_read_median": int(np.median(candidates)),
        "same_list_as_every_city_scored": f"{same}/{len(full_times)}",
        "reference_numpy_cosine_top10_p50_ms": round(float(np.percentile(numpy_top10, 50)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (for a smoke run)")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--only", choices=("quality", "speed"), help="run one half (both by default)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    if args.only != "speed":
        snap, emb = sample_snapshot()
        splits = [evaluate(snap, emb, seed) for seed in range(10)]
        result["quality"] = {
            "sample_mean": summary(splits),
            "sample": splits,
            "generated": evaluate(
                generated_snapshot(500 if args.quick else 2000, 7), np.zeros((0, 0), np.float32), 1
            ),
        }
    if args.only != "quality":
        result["speed"] = [
            speed(n, 3, 50 if args.quick else 200)
            for n in ((2000, 10000) if args.quick else (10000, 100000))
        ]
        result["targets"] = {"p50_ms_at_10000": 20, "p50_ms_at_100000": 200}
    result["load_average_before_after"] = [load_before, os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
