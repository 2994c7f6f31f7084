#!/usr/bin/env python3
"""Embedding throughput: iccmatch's ``embed`` (hashing, cache lookups, writes) against the raw
model's ``encode`` on the same texts in the same process, fp32 and bf16. JSON out.

Texts are the sample network's city profiles, repeated with a counter so none is cached.

    .venv/bin/python -m scripts.bench_embed [--texts 2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from graph.sqlite_store import SqliteStore
from ingest.load import ingest_path
from matching.kernel.embeddings import SentenceEncoder, embed
from matching.kernel.texts import city_profiles

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"sqlite:///{tmp}/e.db")
        assert ingest_path(ROOT / "data" / "sample", store).ok
        base = city_profiles(store.snapshot())
        texts = [f"{base[i % len(base)]} ({i})" for i in range(args.texts)]
        results = {}
        for bf16 in (False, True):
            encoder = SentenceEncoder(bf16=bf16)
            encoder.encode(texts[:64])  # load and warm up
            started = time.perf_counter()
            raw = encoder.encode(texts)
            raw_s = time.perf_counter() - started
            started = time.perf_counter()
            ours = embed(texts, encoder, store)
            ours_s = time.perf_counter() - started
            started = time.perf_counter()
            embed(texts, encoder, store)
            cached_s = time.perf_counter() - started
            results["bf16" if bf16 else "fp32"] = {
                "raw_encode_texts_per_s": round(len(texts) / raw_s, 1),
                "embed_texts_per_s": round(len(texts) / ours_s, 1),
                "embed_over_raw": round(raw_s / ours_s, 3),
                "all_cached_texts_per_s": round(len(texts) / cached_s, 1),
                "vectors": raw,
                "same_vectors": bool(np.allclose(raw, ours, atol=1e-6)),
            }
        fp32, bf16v = results["fp32"].pop("vectors"), results["bf16"].pop("vectors")
        results["bf16"]["min_cosine_to_fp32"] = round(float((fp32 * bf16v).sum(axis=1).min()), 5)
        results["bf16"]["speedup_over_fp32"] = round(
            results["bf16"]["raw_encode_texts_per_s"] / results["fp32"]["raw_encode_texts_per_s"], 3
        )
        store.close()
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "texts": len(texts),
        "results": results,
        "target": "embed within 10% of the raw model's encode (embed_over_raw >= 0.9)",
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
