"""The one adapter from a network's arrays to a :class:`ClusterInput`.

The API, the CLI and scripts all need the same cluster input for a snapshot; building
it here, from plain data (``NetworkArrays`` and the profile vectors), keeps the matcher
free of the service layer and gives every caller the same affinity and capacities.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matching.clusters.affinity import affinity_matrix
from matching.clusters.model import ClusterInput
from matching.kernel.arrays import NetworkArrays


def cluster_input(arr: NetworkArrays, profiles: NDArray[np.float32]) -> ClusterInput:
    """The cluster input of a network: ``profiles`` holds one unit vector per city, in
    ``arr``'s order (the affinity's similarity term reads them)."""
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
    )
