"""The network's data turned into the expert matcher's plain arrays (``ExpertClusterData``).

The solver and the affinity builder know nothing of snapshots or ids; this adapter is the
one place that decides what a cluster *is* to an expert: its text vector is the
normalised mean of its member cities' profile vectors, its themes weigh 1 each, its
required language is its first working language, and an expert's travel to it is the
distance to its member cities (mean and farthest, see ``affinity.member_travel_km``), not
to a centre. Conflicts declared for one request (an expert and a city, with a reason)
rule the expert out of every cluster containing that city, in words. It takes plain data (the snapshot's experts and expert themes, the
network arrays, the vectors, the accepted clusters), so callers other than the API can
use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from graph.model import Cluster as ClusterRow
from graph.model import Expert, ExpertTheme
from matching.experts.affinity import (
    ExpertClusterData,
    cosine_similarity,
    member_travel_km,
    place_conflicts,
)
from matching.experts.problem import InvalidAssignmentInput
from matching.kernel.arrays import NetworkArrays
from matching.kernel.wording import language_name


def expert_inputs(
    experts: Sequence[Expert],
    expert_themes: Sequence[ExpertTheme],
    arrays: NetworkArrays,
    profiles: NDArray[np.float32],
    expert_vectors: NDArray[np.float32],
    clusters: Sequence[ClusterRow],
    *,
    conflict_same_country: bool = False,
    conflicts: Sequence[tuple[str, str, str]] = (),
) -> ExpertClusterData:
    """Arrays for the expert solver: ``experts`` (rows) against ``clusters`` (columns).

    ``profiles``: one unit vector per city in ``arrays`` order (may be empty: no texts);
    ``expert_vectors``: one per expert. With ``conflict_same_country``, an expert based in
    a member city's country may not serve the cluster. ``conflicts``: (expert id, city id,
    reason) triples; the expert may serve no cluster with that city (reason may be "").
    """
    theme_index = arrays.theme_index
    members = [[arrays.index[m] for m in c.members if m in arrays.index] for c in clusters]
    dim = profiles.shape[1] if profiles.size else expert_vectors.shape[1]
    cluster_vectors = np.zeros((len(clusters), dim), dtype=np.float32)
    for k, idx in enumerate(members):
        if idx and profiles.size:
            v = profiles[idx].mean(axis=0)
            cluster_vectors[k] = v / max(float(np.linalg.norm(v)), 1e-9)
    levels = np.zeros((len(experts), len(arrays.theme_ids)))
    expert_row = {e.id: i for i, e in enumerate(experts)}
    for et in expert_themes:
        if et.expert_id in expert_row and et.theme_id in theme_index:
            levels[expert_row[et.expert_id], theme_index[et.theme_id]] = et.level
    cluster_themes = np.zeros((len(clusters), len(arrays.theme_ids)))
    for k, c in enumerate(clusters):
        for t in c.theme_ids:
            if t in theme_index:
                cluster_themes[k, theme_index[t]] = 1.0
    codes = sorted(
        {lang for e in experts for lang in e.languages}
        | {lang for c in clusters for lang in c.working_languages}
    )
    lang_index = {code: i for i, code in enumerate(codes)}
    speaks = np.zeros((len(experts), len(codes)), dtype=bool)
    for i, e in enumerate(experts):
        for lang in e.languages:
            speaks[i, lang_index[lang]] = True
    required = np.array(
        [lang_index[c.working_languages[0]] if c.working_languages else -1 for c in clusters]
    )
    e_lat = np.array([np.nan if e.lat is None else e.lat for e in experts], dtype=float)
    e_lon = np.array([np.nan if e.lon is None else e.lon for e in experts], dtype=float)
    mean_km, farthest_km, farthest_city = member_travel_km(
        e_lat, e_lon, arrays.lat, arrays.lon, members
    )
    countries = [{arrays.countries[i] for i in idx} for idx in members]
    conflict = (
        place_conflicts([e.country for e in experts], countries, same_country=True)
        if conflict_same_country
        else np.zeros((len(experts), len(clusters)), dtype=bool)
    )
    reasons = declared_conflicts(conflicts, expert_row, arrays, members)
    for pair in reasons:
        conflict[pair] = True
    has_text = np.linalg.norm(expert_vectors, axis=1) > 0 if expert_vectors.size else None
    profiled = (
        np.outer(has_text, np.linalg.norm(cluster_vectors, axis=1) > 0)
        if has_text is not None
        else np.zeros((len(experts), len(clusters)), dtype=bool)
    )
    return ExpertClusterData(
        similarity=cosine_similarity(expert_vectors, cluster_vectors)
        if len(experts) and len(clusters)
        else np.zeros((len(experts), len(clusters))),
        expert_levels=levels,
        cluster_themes=cluster_themes,
        theme_names=list(arrays.theme_names),
        expert_languages=speaks,
        cluster_language=required,
        language_names=[language_name(c) for c in codes],
        distance_km=mean_km,
        conflict=conflict,
        profiled=profiled,
        farthest_km=farthest_km,
        farthest_city=farthest_city,
        city_names=list(arrays.names),
        conflict_reasons=reasons,
    )


def declared_conflicts(
    conflicts: Sequence[tuple[str, str, str]],
    expert_row: Mapping[str, int],
    arrays: NetworkArrays,
    members: Sequence[Sequence[int]],
) -> dict[tuple[int, int], str]:
    """The (expert, cluster) pairs that the declared (expert id, city id, reason) conflicts
    rule out, each worded ("conflict with Lutsk (advised it last cycle)"; several
    conflicts on one pair are joined). Unknown ids are an error naming them."""
    unknown_e = sorted({e for e, _, _ in conflicts if e not in expert_row})
    unknown_c = sorted({c for _, c, _ in conflicts if c not in arrays.index})
    if unknown_e or unknown_c:
        parts = []
        if unknown_e:
            parts.append(f"no expert with id {', '.join(map(repr, unknown_e))}")
        if unknown_c:
            parts.append(f"no city with id {', '.join(map(repr, unknown_c))}")
        raise InvalidAssignmentInput("conflicts name " + " and ".join(parts))
    clusters_of: dict[int, list[int]] = {}
    for k, idx in enumerate(members):
        for i in idx:
            clusters_of.setdefault(i, []).append(k)
    out: dict[tuple[int, int], str] = {}
    for expert_id, city_id, reason in conflicts:
        city = arrays.index[city_id]
        text = f"conflict with {arrays.names[city]}" + (f" ({reason})" if reason else "")
        for k in clusters_of.get(city, ()):
            pair = (expert_row[expert_id], k)
            if pair not in out:
                out[pair] = text
            elif text not in out[pair]:
                out[pair] += "; " + text
    return out
