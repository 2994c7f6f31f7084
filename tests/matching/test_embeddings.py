"""Embeddings with the real packaged model, cached by content hash in every store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from graph.store import GraphStore
from matching.kernel.embeddings import SentenceEncoder, content_hash, default_encoder, embed

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).with_name("minilm_reference.json")


class CountingEncoder:
    """Wraps the real encoder and counts the texts it is asked to encode."""

    def __init__(self, inner: SentenceEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        self.encoded += list(texts)
        return self.inner.encode(texts, progress)


TEXTS = [
    "An anti-rumours campaign that trains volunteers to answer prejudice about migrants.",
    "Volunteers counter false stories about newcomers with facts in a city-wide campaign.",
    "The port authority expanded container terminals and dredged the harbour channel.",
]


@pytest.fixture(scope="module")
def real() -> SentenceEncoder:
    return default_encoder()


def test_related_texts_are_closer_than_unrelated_ones(real: SentenceEncoder) -> None:
    v = embed(TEXTS, real)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_unchanged_text_is_never_embedded_twice(store: GraphStore, real: SentenceEncoder) -> None:
    spy = CountingEncoder(real)
    first = embed([*TEXTS, TEXTS[0]], spy, store)
    assert sorted(spy.encoded) == sorted(TEXTS)  # the duplicate was encoded once
    spy.encoded.clear()
    again = embed(TEXTS, spy, store)
    assert spy.encoded == []
    assert np.array_equal(first[:3], again)
    embed([TEXTS[0], "A new text about intercultural schools."], spy, store)
    assert spy.encoded == ["A new text about intercultural schools."]
    assert set(store.cached_vectors(spy.name, [content_hash(t) for t in TEXTS])) == {
        content_hash(t) for t in TEXTS
    }


def test_vectors_match_those_sentence_transformers_computes() -> None:
    """The NumPy runtime against vectors sentence-transformers itself computed (fp32, CPU;
    scripts/reference_vectors.py), accents, Japanese, one letter and a text past the
    model's 256 tokens included."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    ours = SentenceEncoder().encode(reference["texts"])
    cosines = (ours * np.array(reference["vectors"], dtype=np.float32)).sum(axis=1)
    assert cosines.min() >= 0.9999, dict(zip(reference["texts"], cosines, strict=True))


def test_encoding_needs_no_torch() -> None:
    """The runtime is NumPy, tokenizers and safetensors: torch is never imported."""
    code = (
        "import sys; from matching.kernel.embeddings import SentenceEncoder; "
        "SentenceEncoder().encode(['a city of many languages']); "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_a_folder_that_is_not_a_bert_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "t5"}', encoding="utf-8")
    with pytest.raises(ValueError, match="model_type 't5'; only BERT models run here"):
        SentenceEncoder(str(tmp_path)).encode(["a text"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no config\.json"):
        SentenceEncoder(str(empty)).encode(["a text"])


def test_an_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="neither 'all-MiniLM-L6-v2' nor a local folder"):
        SentenceEncoder("no-such-model")
