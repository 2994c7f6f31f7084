#!/usr/bin/env python3
"""Embedding throughput: iccmatch's ``embed`` (hashing, cache lookups, writes) against the raw
runtime's ``encode`` on the same texts in the same process; and, when sentence-transformers
is installed (the ``reference`` extra), its own fp32 and bf16 ``encode`` on the same texts
with the lowest cosine between its vectors and ours. JSON out.

Texts are the sample network's city profiles, repeated with a counter so none is cached.

    .venv/bin/python -m scripts.bench_embed [--texts 1000] [--out FILE]
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
from matching.kernel.embeddings import PACKAGED_MODEL, SentenceEncoder, embed, resolve_model_path
from matching.kernel.texts import city_profiles

ROOT = Path(__file__).resolve().parents[1]


def _timed(encode, texts: list[str]) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    encode(texts[:32])  # load and warm up
    started = time.perf_counter()
    vectors = encode(texts)
    return vectors, time.perf_counter() - started


def _reference(texts: list[str], ours: np.ndarray) -> dict[str, object]:
    """sentence-transformers on the same texts, fp32 and bf16, if it is installed."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ModuleNotFoundError:
        return {"skipped": "sentence-transformers is not installed (pip install -e '.[reference]')"}
    model = SentenceTransformer(resolve_model_path(PACKAGED_MODEL), device="cpu")
    out: dict[str, object] = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):

        def encode(part: list[str], bf16: bool = bf16) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return model.encode(part, batch_size=64, normalize_embeddings=True)

        vectors, seconds = _timed(encode, texts)
        out[name] = {
            "encode_texts_per_s": round(len(texts) / seconds, 1),
            "min_cosine_to_ours": round(float((vectors * ours).sum(axis=1).min()), 6),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"sqlite:///{tmp}/e.db")
        assert ingest_path(ROOT / "data" / "sample", store).ok
        base = city_profiles(store.snapshot())
        texts = [f"{base[i % len(base)]} ({i})" for i in range(args.texts)]
        encoder = SentenceEncoder()
        started = time.perf_counter()
        encoder.encode(["load"])
        load_s = time.perf_counter() - started
        raw, raw_s = _timed(encoder.encode, texts)
        started = time.perf_counter()
        ours = embed(texts, encoder, store)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        embed(texts, encoder, store)
        cached_s = time.perf_counter() - started
        results = {
            "numpy_runtime": {
                "model_load_s": round(load_s, 3),
                "raw_encode_texts_per_s": round(len(texts) / raw_s, 1),
                "embed_texts_per_s": round(len(texts) / ours_s, 1),
                "embed_over_raw": round(raw_s / ours_s, 3),
                "all_cached_texts_per_s": round(len(texts) / cached_s, 1),
                "same_vectors": bool(np.allclose(raw, ours, atol=1e-6)),
            },
            "sentence_transformers": _reference(texts, raw),
        }
        store.close()
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "texts": len(texts),
        "results": results,
        "target": "embed within 10% of the raw runtime's encode (embed_over_raw >= 0.9)",
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
