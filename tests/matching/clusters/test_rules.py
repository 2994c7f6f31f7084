"""The shared rules judge any grouping: a planted plan passes, a lumped one does not."""

from __future__ import annotations

import numpy as np

from matching.clusters import ClusterParams, check_groups
from tests.matching.clusters.support import planted


def test_check_groups_judges_the_planted_plan_valid_and_a_bad_grouping_invalid() -> None:
    p = planted(80, noise=0.5, n_themes=4, seed=2)
    params = ClusterParams(max_themes=4)
    plan = [np.flatnonzero(p.labels == g).tolist() for g in range(int(p.labels.max()) + 1)]
    assert all(s.violated == 0 for s in check_groups(p.inp, params, plan))
    lump = [list(range(40)), list(range(40, 80))]
    statuses = {s.name: s for s in check_groups(p.inp, params, lump)}
    assert statuses["size_bounds"].violated == 2
