"""Places on the Earth: one great-circle distance, one centroid, one Earth radius.

Every matcher that measures distance (partners, cluster regions, expert travel) uses
these, so "1,500 km" means the same thing in a partner reason and a cluster rule.
Distances are haversine on a sphere of the mean Earth radius (IUGG), good to ~0.5 %
anywhere; unknown coordinates (NaN) give NaN distances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from matching.kernel.arrays import FloatArray

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), in km."""


def arc_km(h: npt.ArrayLike) -> FloatArray:
    """Great-circle km from ``h``, the haversine of the central angle (sin² of half of it).

    Hot paths compute ``h`` their own way (from precomputed cosines, or ``h = (1 - u·v) / 2``
    from unit vectors) and share this last step; ``h`` is clipped to [0, 1] against rounding.
    """
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def haversine_km(
    lat1: float | npt.ArrayLike,
    lon1: float | npt.ArrayLike,
    lat2: float | npt.ArrayLike,
    lon2: float | npt.ArrayLike,
) -> FloatArray:
    """Great-circle distance in km between points given in degrees, broadcasting over arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlmb = np.radians(lon2) - np.radians(lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return arc_km(h)


def distance_matrix_km(
    lat_a: npt.ArrayLike, lon_a: npt.ArrayLike, lat_b: npt.ArrayLike, lon_b: npt.ArrayLike
) -> FloatArray:
    """Great-circle km between every point of ``a`` (rows) and every point of ``b`` (columns)."""
    la = np.asarray(lat_a, dtype=np.float64)[:, None]
    lo = np.asarray(lon_a, dtype=np.float64)[:, None]
    lb = np.asarray(lat_b, dtype=np.float64)[None, :]
    lob = np.asarray(lon_b, dtype=np.float64)[None, :]
    return haversine_km(la, lo, lb, lob)


def unit_vectors(lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """Points as (n, 3) unit vectors: chord length orders pairs as great-circle distance does,
    which lets a k-d tree find nearest places."""
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def chord_km(chord: npt.ArrayLike) -> FloatArray:
    """Great-circle km from the straight-line distance between two unit vectors."""
    return arc_km((np.asarray(chord, dtype=np.float64) / 2.0) ** 2)


def spherical_centroids(
    lat: npt.ArrayLike, lon: npt.ArrayLike, members: Sequence[Sequence[int]]
) -> tuple[FloatArray, FloatArray]:
    """(lat, lon) in degrees of each group's centre: the normalised mean of its members'
    unit vectors (right across the antimeridian, unlike averaging degrees); NaN when empty."""
    xyz = unit_vectors(lat, lon)
    out_lat = np.full(len(members), np.nan)
    out_lon = np.full(len(members), np.nan)
    for k, idx in enumerate(members):
        if len(idx) == 0:
            continue
        m = xyz[list(idx)].mean(axis=0)
        out_lat[k] = math.degrees(math.atan2(m[2], math.hypot(m[0], m[1])))
        out_lon[k] = math.degrees(math.atan2(m[1], m[0]))
    return out_lat, out_lon
