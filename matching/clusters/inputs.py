"""The one adapter from a network's arrays to a :class:`ClusterInput`.

The API, the CLI and scripts all need the same cluster input for a snapshot; building
it here, from plain data (``NetworkArrays`` and the profile vectors), keeps the matcher
free of the service layer and gives every caller the same affinity and capacities. The accepted clusters of the
running period count toward each city's load (:func:`accepted_load`): a coordinator's
hours cover the clusters already running as well as the new ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from matching.clusters.affinity import affinity_matrix
from matching.clusters.model import ClusterInput
from matching.kernel.arrays import NetworkArrays


class AcceptedCluster(Protocol):
    """What :func:`accepted_load` reads of an accepted cluster (``graph.model.Cluster``)."""

    @property
    def name(self) -> str: ...
    @property
    def members(self) -> Sequence[str]: ...
    @property
    def period(self) -> str | None: ...


def running(period: str | None, year: int) -> bool:
    """Whether an accepted cluster's ``period`` ("2025-2027", "2026", or none) includes
    ``year``. A cluster with no period, or one whose period names no year, is taken as
    running: counting it wrongly costs a city one proposal, missing it overloads its
    coordinator."""
    years = [int(y) for y in re.findall(r"\d{4}", period or "")]
    if not years:
        return True
    return min(years) <= year <= max(years)


def accepted_load(
    clusters: Sequence[AcceptedCluster], city_ids: Sequence[str], year: int
) -> tuple[tuple[str, ...], ...]:
    """Per city (in ``city_ids``' order), the names of the accepted clusters running in
    ``year`` it is a member of (members the network no longer lists are ignored)."""
    pos = {c: i for i, c in enumerate(city_ids)}
    held: list[list[str]] = [[] for _ in city_ids]
    for c in clusters:
        if running(c.period, year):
            for m in c.members:
                if m in pos:
                    held[pos[m]].append(c.name)
    return tuple(tuple(h) for h in held)


def cluster_input(
    arr: NetworkArrays,
    profiles: NDArray[np.float32],
    accepted: Sequence[AcceptedCluster] = (),
    year: int | None = None,
) -> ClusterInput:
    """The cluster input of a network: ``profiles`` holds one unit vector per city, in
    ``arr``'s order (the affinity's similarity term reads them). ``accepted``: the
    snapshot's accepted clusters; those running in ``year`` (default: this year) take
    one of each member's clusters."""
    when = dt.date.today().year if year is None else year
    return ClusterInput(
        city_ids=arr.city_ids,
        names=arr.names,
        affinity=affinity_matrix(arr, profiles),
        countries=arr.countries,
        networks=arr.networks,
        membership=tuple("national" if x else "international" for x in arr.national),
        languages=arr.languages,
        language_codes=arr.language_codes,
        theme_ids=arr.theme_ids,
        theme_names=arr.theme_names,
        priority=arr.priority.astype(np.int64),
        strength=arr.strength,
        capacity=arr.capacity,
        lat=arr.lat,
        lon=arr.lon,
        practices=arr.practices > 0,
        ties=arr.ties,
        joined=np.nan_to_num(arr.joined, nan=0).astype(np.int64),
        accepted=accepted_load(accepted, arr.city_ids, when) if accepted else None,
    )
