"""Thematic clusters recover planted structure (issue 15) and respect accepted load (issue 14).

The network comes from ``scripts.planted.signatures``: groups sharing a signature of three
themes, noisy priorities, paraphrased texts, ties, outsiders. The ARI threshold comes from
the benchmark (docs/performance.md, "Clusters"): on the tuning seeds 0-4 at 300 cities the
proposal scores 0.94-0.97, so 0.9 leaves room for seed-to-seed spread while catching a
regression to the issue's 0.71.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from matching.clusters import ClusterParams, propose_clusters
from matching.clusters.inputs import accepted_load, running
from scripts.bench_clusters import labels_of, run_leidenalg, truth_labels
from scripts.planted import Signed, signatures


def _shared_pairs(sig: tuple[tuple[int, int, int], ...]) -> float:
    """Share of groups whose signature shares two themes with an earlier group's."""
    hits = sum(
        any(len(set(sig[g]) & set(sig[h])) >= 2 for h in range(g)) for g in range(1, len(sig))
    )
    return hits / max(1, len(sig) - 1)


def test_overlap_makes_groups_share_signatures() -> None:
    low = signatures(100, overlap=0.0, seed=3).signature
    high = signatures(100, overlap=0.9, seed=3).signature
    assert _shared_pairs(high) > 0.85
    assert _shared_pairs(low) < _shared_pairs(high) - 0.3


def test_priority_noise_perturbs_priorities() -> None:
    def clean_share(net: Signed) -> float:
        rows = [
            all(
                net.inp.priority[i, t] == v
                for t, v in zip(net.signature[g], (5, 4, 3), strict=True)
            )
            and int((net.inp.priority[i] > 0).sum()) == 3
            for i, g in enumerate(net.labels.tolist())
            if g >= 0
        ]
        return float(np.mean(rows))

    assert clean_share(signatures(300, priority_noise=0.0, seed=1)) == 1.0
    assert clean_share(signatures(300, priority_noise=1.0, seed=1)) == 0.0


def _text_contrast(paraphrase: float, text_share: float) -> float:
    """Mean text similarity of two members of a group less that of two cities of
    different groups (TF-IDF cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    net = signatures(200, paraphrase=paraphrase, text_share=text_share, seed=5)
    tf = TfidfVectorizer(token_pattern=r"\S+").fit_transform(net.texts)
    sim = (tf @ tf.T).toarray()
    same = net.labels[:, None] == net.labels[None, :]
    grouped = (net.labels[:, None] >= 0) & (net.labels[None, :] >= 0)
    off = ~np.eye(len(net.labels), dtype=bool)
    assert len(set(net.texts)) == len(net.texts)  # never identical descriptions
    return float(sim[same & grouped & off].mean() - sim[~same & grouped].mean())


def test_text_knobs_set_how_alike_a_group_writes() -> None:
    assert _text_contrast(0.0, 0.6) > _text_contrast(0.8, 0.6) + 0.1
    assert _text_contrast(0.5, 0.6) > _text_contrast(0.5, 0.2) + 0.05


def test_outsiders_and_ties() -> None:
    net = signatures(400, outsiders=0.1, ties_inside=0.8, seed=2)
    assert int((net.labels < 0).sum()) == 40
    ties = net.inp.ties.tocoo()  # type: ignore[union-attr]
    lab = net.labels
    inside = np.mean(
        [lab[a] == lab[b] and lab[a] >= 0 for a, b in zip(ties.row, ties.col, strict=True)]
    )
    assert 0.65 < inside < 0.95  # mostly, not only, inside groups
    assert int((signatures(400, outsiders=0.0, seed=2).labels < 0).sum()) == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_proposal_recovers_the_plan_better_than_plain_leiden(seed: int) -> None:
    net = signatures(300, seed=seed)
    inp = net.inp
    prop = propose_clusters(inp, ClusterParams(max_themes=len(inp.theme_ids), seed=seed))
    pos = {c: i for i, c in enumerate(inp.city_ids)}
    groups = [[pos[m] for m in c.members] for c in prop.clusters]
    truth = truth_labels(net.labels)
    ours = adjusted_rand_score(truth, labels_of(groups, inp.n))
    leiden, _ = run_leidenalg(inp.affinity, seed)
    plain = adjusted_rand_score(truth, labels_of(leiden, inp.n))
    assert ours >= 0.9
    assert ours > plain
    # the cohesion check: a cluster below a random pair of its pool says why it was kept
    for c in prop.clusters:
        below = c.score < c.components["pool_baseline"]
        assert below == any(r.kind == "cohesion_check" for r in c.reasons)
    assert prop.metrics["clusters_below_random_pair"] == sum(
        c.score < c.components["pool_baseline"] for c in prop.clusters
    )


def test_a_weak_cluster_says_why_it_was_kept() -> None:
    net = signatures(120, outsiders=0.0, seed=4)
    inp = net.inp
    t = net.signature[0][0]
    pool = [i for i in range(inp.n) if inp.priority[i, t] > 0]
    A = np.asarray(inp.affinity)
    # the least cohesive valid group of four among a sample of the pool's candidates
    best: tuple[float, list[int]] | None = None
    params = ClusterParams(
        themes=(inp.theme_ids[t],),
        max_per_city=1,
        max_size=4,  # the lock stays as chosen
        seed=0,
        require_common_language=False,
        mixed_membership=False,
        allow_single_country=True,
        allow_single_network=True,
    )
    for combo in itertools.islice(itertools.combinations(pool[:14], 4), 400):
        m = list(combo)
        coh = A[np.ix_(m, m)].sum() / 12
        if best is None or coh < best[0]:
            best = (coh, m)
    assert best is not None
    members = [inp.city_ids[i] for i in best[1]]
    # a planner's lock inside a proposal: judged against the whole pool, not its own members
    prop = propose_clusters(
        inp, dataclasses.replace(params, locked={f"{inp.theme_ids[t]}#1": tuple(members)})
    )
    (c,) = [c for c in prop.clusters if c.locked_slot is not None]
    assert c.score < c.components["pool_baseline"]
    (check,) = [r for r in c.reasons if r.kind == "cohesion_check"]
    assert check.text.startswith("Less cohesive than a random pair of its pool (")
    assert check.text.endswith("kept because its members were kept together as asked")


def test_running_periods() -> None:
    assert running("2025-2027", 2026) and running(None, 2026) and running("2026", 2026)
    assert not running("2022-2024", 2026) and not running("2027-2029", 2026)


@dataclasses.dataclass(frozen=True)
class Accepted:
    name: str
    members: tuple[str, ...]
    period: str | None


def test_accepted_clusters_count_toward_the_load() -> None:
    net = signatures(200, outsiders=0.0, seed=6)
    inp0 = net.inp
    ids = inp0.city_ids
    busy, free = ids[0], ids[1]
    accepted = [
        Accepted("Education 1", (busy, ids[5]), "2025-2027"),
        Accepted("Housing 3", (busy,), None),
        Accepted("Old", (busy, free), "2019-2021"),  # over: does not count
    ]
    held = accepted_load(accepted, ids, 2026)
    assert held[0] == ("Education 1", "Housing 3") and held[1] == () and held[5] == ("Education 1",)
    inp = dataclasses.replace(inp0, capacity=np.full(inp0.n, 3), accepted=held)
    params = ClusterParams(max_themes=len(inp.theme_ids), max_per_city=3, seed=0)
    prop = propose_clusters(inp, params)
    count = {c: 0 for c in ids}
    for c in prop.clusters:
        for m in c.members:
            count[m] += 1
    assert count[busy] <= 1 and count[ids[5]] <= 2
    assert (
        prop.limited[busy]
        == "already in 2 accepted clusters (Education 1, Housing 3): at most 1 more"
    )
    assert free not in prop.limited
    # with max_per_city 2 the busy city can join none, and is left out saying why
    prop2 = propose_clusters(inp, dataclasses.replace(params, max_per_city=2))
    assert all(busy not in c.members for c in prop2.clusters)
    (why,) = [u for u in prop2.unassigned if u.city_id == busy]
    assert why.reason == "already in 2 accepted clusters (Education 1, Housing 3): no more"
    assert prop2.to_dict()["limited"][busy] == why.reason
