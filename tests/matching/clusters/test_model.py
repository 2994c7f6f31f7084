"""The input and parameter dataclasses: malformed input is refused, inputs are never touched."""

from __future__ import annotations

import numpy as np
import pytest

from graph.errors import InvalidInput
from matching.clusters import ClusterInput, ClusterInputError, ClusterParams, propose_clusters
from tests.matching.clusters.support import random_input


def test_inputs_are_never_mutated() -> None:
    inp = random_input(3, 30)
    A = np.array(inp.affinity)
    pr = inp.priority.copy()
    original = np.random.default_rng(0).random((30, 30))
    original = (original + original.T) / 2
    kept = original.copy()
    inp2 = ClusterInput(
        **{**{f: getattr(inp, f) for f in inp.__dataclass_fields__}, "affinity": original}
    )
    propose_clusters(inp, ClusterParams(method="heuristic", min_size=2))
    propose_clusters(inp2, ClusterParams(method="heuristic", min_size=2))
    assert np.array_equal(np.asarray(inp.affinity), A) and np.array_equal(inp.priority, pr)
    assert np.array_equal(original, kept)
    assert not inp.priority.flags.writeable


def test_malformed_input_is_rejected_with_a_useful_message() -> None:
    inp = random_input(1, 6)
    fields = {f: getattr(inp, f) for f in inp.__dataclass_fields__}
    bad = np.array(inp.affinity)
    bad[0, 1] += 0.5
    with pytest.raises(ClusterInputError, match="symmetric"):
        ClusterInput(**{**fields, "affinity": bad})
    with pytest.raises(ClusterInputError, match="shape"):
        ClusterInput(**{**fields, "priority": np.zeros((5, 3))})
    with pytest.raises(ClusterInputError, match="raise max_size"):
        ClusterParams(min_size=5, max_size=4)
    with pytest.raises(ClusterInputError, match="not in the network"):
        propose_clusters(inp, ClusterParams(excluded=frozenset({"nowhere"})))
    err = ClusterInputError("x")
    assert isinstance(err, ValueError) and isinstance(err, InvalidInput) and err.status == 422
