"""The expert-assignment problem as the solvers see it, checked once at the door.

Both solvers (``flow``: max total; ``fair``: max-min, then total) and the shortfall
diagnosis take the same four arrays: affinity (experts x clusters), capacity, demand and
the forbidden pairs. They are validated here, once, into a ``TransportProblem`` of private
copies (the affinity: a read-only view, copied only to convert it to float64), so every
error message about malformed input is written in one place and no solver can modify its
caller's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from graph.errors import InvalidInput
from matching.kernel.arrays import BoolArray, FloatArray, IntArray


class InvalidAssignmentInput(InvalidInput, ValueError):
    """The arrays handed to the solver or the affinity builder are malformed."""


_MAX_COUNT: Final = 2**31 - 1


@dataclass(frozen=True, slots=True, eq=False)
class TransportProblem:
    """The transportation problem both solvers solve: validated, private (or read-only) inputs.

    Made by ``validate_problem``; the solvers build variants of it (fewer seats, reweighted
    affinities) directly, from arrays already checked.
    """

    affinity: FloatArray  # (E, C)
    capacity: IntArray  # (E,)
    demand: IntArray  # (C,)
    allowed: BoolArray  # (E, C): not forbidden

    @property
    def shape(self) -> tuple[int, int]:
        e, c = self.affinity.shape
        return int(e), int(c)

    @property
    def usable(self) -> BoolArray:
        """Pairs a solution may use: allowed, the expert takes some cluster, the cluster wants some."""
        out: BoolArray = self.allowed & (self.capacity > 0)[:, None] & (self.demand > 0)[None, :]
        return out


def _counts(values: Any, name: str, length: int, what: str) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise InvalidAssignmentInput(
            f"{name} must be a 1-D array with one entry per {what} ({length}), got shape "
            f"{arr.shape}"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"{name} must hold integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidAssignmentInput(
                f"{name}[{i}] is {arr[i]!r}: {name} must be whole numbers of experts"
            )
    if arr.size and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise InvalidAssignmentInput(f"{name}[{i}] is {arr[i]}: {name} must be >= 0 (0 means none)")
    if arr.size and (arr > _MAX_COUNT).any():
        i = int(np.flatnonzero(arr > _MAX_COUNT)[0])
        raise InvalidAssignmentInput(f"{name}[{i}] is {arr[i]}: that is not a realistic count")
    return arr.astype(np.int64)


def validate_problem(affinity: Any, capacity: Any, demand: Any, forbidden: Any) -> TransportProblem:
    """The solvers' arguments checked and copied; ``InvalidAssignmentInput`` says what to fix."""
    a = np.asarray(affinity)
    if a.ndim != 2:
        raise InvalidAssignmentInput(
            f"affinity must be a 2-D array (experts x clusters), got {a.ndim} dimension(s)"
        )
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise InvalidAssignmentInput(f"affinity must hold real numbers, got dtype {a.dtype}")
    # Read-only, not copied when already float64: at 20,000 x 20,000 a copy is 3.2 GB more.
    # No solver can write through it (numpy raises), so the caller's array is never modified.
    a = np.asarray(a, dtype=np.float64).view()
    a.flags.writeable = False
    n_e, n_c = a.shape
    if not np.isfinite(a).all():
        e, c = (int(v) for v in np.argwhere(~np.isfinite(a))[0])
        raise InvalidAssignmentInput(
            f"affinity[{e}, {c}] is {a[e, c]}: scores must be finite; forbid the pair "
            "instead of scoring it -inf"
        )
    cap = _counts(capacity, "capacity", n_e, "expert")
    dem = _counts(demand, "demand", n_c, "cluster")
    if forbidden is None:
        allowed = np.ones((n_e, n_c), dtype=np.bool_)
    else:
        f = np.asarray(forbidden)
        if f.shape != (n_e, n_c):
            raise InvalidAssignmentInput(
                f"forbidden must have the shape of affinity {(n_e, n_c)}, got {f.shape}"
            )
        if f.dtype != np.bool_ and (
            not np.issubdtype(f.dtype, np.integer) or not np.isin(f, (0, 1)).all()
        ):
            raise InvalidAssignmentInput(
                f"forbidden must be a boolean mask (True = never pair), got dtype {f.dtype}"
            )
        allowed = ~f.astype(np.bool_)
    return TransportProblem(a, cap, dem, allowed)
