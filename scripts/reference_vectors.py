#!/usr/bin/env python3
"""Writes the vectors sentence-transformers itself computes for a few texts (fp32, CPU),
which tests/matching/test_embeddings.py holds our NumPy runtime to (cosine >= 0.9999).

Needs the reference runtime, which iccmatch does not install (torch brings ~5 GB of CUDA
libraries): ``.venv/bin/pip install -e '.[reference]'``, then

    .venv/bin/python -m scripts.reference_vectors [--out tests/matching/minilm_reference.json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from matching.kernel.embeddings import PACKAGED_MODEL, resolve_model_path

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "An anti-rumours campaign that trains volunteers to answer prejudice about migrants.",
    "Volunteers counter false stories about newcomers with facts in a city-wide campaign.",
    "The port authority expanded container terminals and dredged the harbour channel.",
    "Intercultural schools: mother-tongue classes, mixed parent councils and mentoring.",
    "Ville interculturelle : participation des résidents étrangers à la vie de la cité.",
    "Stadt der Vielfalt – Integrationsbeirat, Sprachkurse und Nachbarschaftsfeste.",  # noqa: RUF001
    "多文化共生のまちづくり",
    "x",
    "Lutsk",
    # longer than the model's 256 tokens: both runtimes must cut it at the same place
    " ".join(f"Neighbourhood dialogue number {n} on housing, work and schools." for n in range(60)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests/matching/minilm_reference.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model_path(PACKAGED_MODEL), device="cpu")
    with torch.inference_mode():
        vectors = model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    doc = {
        "model": PACKAGED_MODEL,
        "made_with": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}, fp32, CPU",
        "texts": TEXTS,
        "vectors": [[round(float(x), 7) for x in row] for row in vectors],
    }
    args.out.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(TEXTS)} reference vectors to {args.out}")


if __name__ == "__main__":
    main()
