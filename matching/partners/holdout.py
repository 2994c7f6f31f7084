"""Hiding ties to learn from or to measure with: a seeded share of the ties, never a
city's last one, and which hidden ties still have a common neighbour."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graph.errors import InvalidInput
from matching.kernel.arrays import (
    BoolArray,
    IntArray,
    NetworkArrays,
    tie_edges,
    with_ties,
)


@dataclass(frozen=True, eq=False)
class Holdout:
    """One split: the visible network, the hidden ties, and which of them have a common
    neighbour in the visible graph."""

    visible: NetworkArrays
    hidden: IntArray  # (h, 2) city indices, i < j
    common: BoolArray  # (h,)


MIN_HOLDOUT = 0.01
MAX_HOLDOUT = 0.9
"""Shares of ties a split may hide: less finds nothing to measure, more leaves no network."""


def hidden_per_split(ties: int, holdout: float) -> int:
    """How many ties a split hides; a clear error when that is none."""
    if not MIN_HOLDOUT <= holdout <= MAX_HOLDOUT:
        raise InvalidInput(
            f"holdout is the share of ties to hide, between {MIN_HOLDOUT} and {MAX_HOLDOUT}, "
            f"not {holdout}"
        )
    count = math.floor(ties * holdout + 1e-9)
    if count < 1:
        needed = math.ceil(1.0 / holdout - 1e-9)
        raise InvalidInput(
            f"the network has {ties} {'tie' if ties == 1 else 'ties'}; holding out "
            f"{holdout:.0%} of them needs at least {needed} ties: add ties or raise the holdout"
        )
    return count


def holdout_split(arr: NetworkArrays, holdout: float = 0.1, seed: int = 0) -> Holdout:
    """Hide ``holdout`` of the ties at random (seeded), only ties whose two cities each keep
    another tie: a city the visible network leaves alone could not be ranked fairly."""
    edges = tie_edges(arr)
    target = hidden_per_split(len(edges), holdout)
    degree = np.bincount(edges.ravel(), minlength=arr.n)
    hide = np.zeros(len(edges), dtype=bool)
    count = 0
    for e in np.random.default_rng(seed).permutation(len(edges)).tolist():
        a, b = int(edges[e, 0]), int(edges[e, 1])
        if degree[a] > 1 and degree[b] > 1:
            hide[e] = True
            degree[a] -= 1
            degree[b] -= 1
            count += 1
            if count == target:
                break
    if count == 0:
        raise InvalidInput(
            f"none of the network's {len(edges)} ties can be held out: each joins a city that "
            "has no other tie, and hiding it would leave that city with none; evaluation "
            "needs cities with two ties or more"
        )
    visible = with_ties(arr, edges[~hide])
    hidden = edges[hide]
    shared = visible.ties[hidden[:, 0]].multiply(visible.ties[hidden[:, 1]])
    common = np.asarray(shared.sum(axis=1)).ravel() > 0
    return Holdout(visible, hidden, common)
