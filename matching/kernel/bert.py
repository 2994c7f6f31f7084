"""A sentence-transformers BERT model (all-MiniLM-L6-v2 and its kind) run with NumPy.

Why not sentence-transformers itself: it needs torch, and torch from PyPI on Linux brings
about 5 GB of CUDA libraries that a CPU-only service never uses; a fresh install of them
filled CI's disk. The forward pass of a small BERT is a few matrix products. The tokenizer
is Hugging Face's ``tokenizers`` reading the model's own ``tokenizer.json``, the weights are
read with ``safetensors``, and the steps follow the folder's own configuration (maximum
length, mean pooling, normalisation). Vectors agree with sentence-transformers' to cosine
>= 0.9999 (tests/matching/test_embeddings.py keeps vectors it computed, and
scripts/bench_embed.py compares the two when sentence-transformers is installed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]


class BertFolderError(ValueError):
    """A model folder this runtime cannot run, with the reason."""


def _json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        raise BertFolderError(f"{folder}: no {name} (not a sentence-transformers model folder)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _layer_norm(x: Array, weight: Array, bias: Array, eps: np.float32) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias  # type: ignore[no-any-return]


def _gelu(x: Array) -> Array:
    """GELU in its tanh form, in place: about 4x faster here than erf (which SciPy computes
    in double precision, one value at a time), and within 5e-4 of it."""
    inner = x * x
    inner *= np.float32(0.044715)
    inner += 1
    inner *= x
    inner *= np.float32(np.sqrt(2 / np.pi))
    np.tanh(inner, out=inner)
    inner += 1
    inner *= 0.5
    x *= inner
    return x


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, transposed for ``x @ W``, with query, key and value in
    one matrix and the attention scale folded into the query."""

    qkv: Array
    qkv_bias: Array
    out: Array
    out_bias: Array
    norm1: Array
    norm1_bias: Array
    up: Array
    up_bias: Array
    down: Array
    down_bias: Array
    norm2: Array
    norm2_bias: Array

    @classmethod
    def of(cls, w: dict[str, Array], p: str, head_size: int) -> _Layer:
        scale = np.float32(1 / np.sqrt(head_size))
        a = p + "attention."
        one = np.float32(1)
        parts = [(a + "self.query", scale), (a + "self.key", one), (a + "self.value", one)]
        return cls(
            qkv=np.ascontiguousarray(np.concatenate([w[n + ".weight"] * f for n, f in parts]).T),
            qkv_bias=np.concatenate([w[n + ".bias"] * f for n, f in parts]),
            out=np.ascontiguousarray(w[a + "output.dense.weight"].T),
            out_bias=w[a + "output.dense.bias"],
            norm1=w[a + "output.LayerNorm.weight"],
            norm1_bias=w[a + "output.LayerNorm.bias"],
            up=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
            up_bias=w[p + "intermediate.dense.bias"],
            down=np.ascontiguousarray(w[p + "output.dense.weight"].T),
            down_bias=w[p + "output.dense.bias"],
            norm2=w[p + "output.LayerNorm.weight"],
            norm2_bias=w[p + "output.LayerNorm.bias"],
        )


class BertEncoder:
    """Loads a sentence-transformers folder made of a BERT, mean pooling and (optionally)
    normalisation, and encodes texts to float32 rows."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        config = _json(self.folder, "config.json")
        if config.get("model_type") != "bert":
            raise BertFolderError(
                f"{self.folder}: model_type {config.get('model_type')!r}; only BERT models run here"
            )
        if config.get("hidden_act", "gelu") != "gelu":
            raise BertFolderError(f"{self.folder}: hidden_act {config['hidden_act']!r} is not gelu")
        modules = (
            json.loads((self.folder / "modules.json").read_text(encoding="utf-8"))
            if (self.folder / "modules.json").is_file()
            else []
        )
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next((m for m in modules if m["type"].endswith(".Pooling")), None)
        if pooling is not None:
            pool = _json(self.folder / pooling["path"], "config.json")
            modes = {k for k, v in pool.items() if k.startswith("pooling_mode_") and v is True}
            if modes != {"pooling_mode_mean_tokens"}:
                raise BertFolderError(f"{self.folder}: only mean pooling runs here, not {pool}")
        self.normalize = "Normalize" in kinds
        sbert = self.folder / "sentence_bert_config.json"
        limit = _json(self.folder, sbert.name).get("max_seq_length") if sbert.is_file() else None
        self.max_length = int(limit or config.get("max_position_embeddings", 512))
        self.heads = int(config["num_attention_heads"])
        self.eps = np.float32(config.get("layer_norm_eps", 1e-12))
        self.layers = int(config["num_hidden_layers"])
        weights = self.folder / "model.safetensors"
        if not weights.is_file():
            raise BertFolderError(f"{self.folder}: no model.safetensors")
        w = {k.removeprefix("bert."): v for k, v in load_file(str(weights)).items()}
        self.w = {k: v for k, v in w.items() if v.dtype == np.float32}
        size = int(config["hidden_size"]) // self.heads
        self.stack = [_Layer.of(self.w, f"encoder.layer.{n}.", size) for n in range(self.layers)]
        self.dimension = int(config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Array:
        """One row per text, in order. Texts are batched by length so padding stays small."""
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda k: len(encodings[k].ids))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[k].ids) for k in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for r, k in enumerate(rows):
                e = encodings[k]
                ids[r, : len(e.ids)] = e.ids
                types[r, : len(e.ids)] = e.type_ids
                mask[r, : len(e.ids)] = 1.0
            out[rows] = self._pooled(ids, types, mask)
        return out

    def _pooled(self, ids: NDArray[np.int64], types: NDArray[np.int64], mask: Array) -> Array:
        w, eps = self.w, self.eps
        batch, width = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width]
            + w["embeddings.token_type_embeddings.weight"][types]
        ).reshape(batch * width, self.dimension)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        heads, size = self.heads, self.dimension // self.heads
        blocked = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in self.stack:
            qkv = x @ layer.qkv
            qkv += layer.qkv_bias
            qkv = qkv.reshape(batch, width, 3, heads, size).transpose(2, 0, 3, 1, 4)
            scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
            scores += blocked
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch * width, -1)
            attended = context @ layer.out
            attended += layer.out_bias
            attended += x
            x = _layer_norm(attended, layer.norm1, layer.norm1_bias, eps)
            inner = x @ layer.up
            inner += layer.up_bias
            out = _gelu(inner) @ layer.down
            out += layer.down_bias
            out += x
            x = _layer_norm(out, layer.norm2, layer.norm2_bias, eps)
        x = x.reshape(batch, width, -1)
        counts = np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        pooled = (x * mask[:, :, None]).sum(axis=1) / counts
        if self.normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled, dtype=np.float32)
