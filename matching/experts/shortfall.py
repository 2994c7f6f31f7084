"""Why an expert assignment cannot serve every cluster, and what to relax.

When the clusters ask for more experts than the eligible ones can give, "infeasible" is
not an answer a secretariat can act on. The minimum cut of the maximum flow names the
clusters that go short together (``ShortfallGroup``: a Hall violator, the same whatever
the assignment) and how many seats no assignment can fill; ``describe_shortfall`` turns
each group into one sentence saying what to relax. ``InfeasibleAssignment`` carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graph.errors import Infeasible
from matching.experts.problem import TransportProblem
from matching.kernel.arrays import IntArray
from matching.kernel.wording import name_list, plural


@dataclass(frozen=True, slots=True)
class ShortfallGroup:
    """Clusters that together ask for more than the experts eligible for them can give.

    A Hall violator of the assignment problem, read off the minimum cut of the max flow:
    whatever the assignment, these clusters jointly miss ``missing`` experts. Which of
    them goes short is a choice (``assign_experts`` lets affinity decide); that the group
    goes short is not. Groups are independent: relaxing one group helps only that group.
    """

    clusters: tuple[int, ...]  # cluster indices, ascending
    demand: int  # experts the clusters ask for, together
    servable: int  # the most of that demand any assignment can meet
    experts: int  # experts with capacity > 0 eligible for at least one of the clusters
    idle_experts: int  # experts eligible for one of the clusters but with capacity 0

    @property
    def missing(self) -> int:
        return self.demand - self.servable


def describe_shortfall(group: ShortfallGroup, cluster_names: Sequence[str]) -> str:
    """One sentence: what is short, and what to relax to fix it."""
    if len(group.clusters) == 1:
        (c,) = group.clusters
        what = (
            f"cluster {cluster_names[c]} needs {plural(group.demand, 'expert')} but only "
            f"{plural(group.servable, 'eligible expert')} can take it"
        )
        fixes = ["allow more experts for it (forbidden pairs, working language, conflicts)"]
        if group.idle_experts:
            fixes.insert(
                0,
                f"raise max_assignments of the {plural(group.idle_experts, 'eligible expert')} "
                f"who {'takes' if group.idle_experts == 1 else 'take'} none",
            )
        fixes.append("lower its demand")
    else:
        names = [cluster_names[c] for c in group.clusters]
        what = (
            f"clusters {name_list(names, limit=8)} need {group.demand} experts between them but the "
            f"{plural(group.experts, 'expert')} eligible for them can take only "
            f"{group.servable} of these assignments"
        )
        fixes = [
            "raise max_assignments of those experts",
            "allow more experts (forbidden pairs, working language, conflicts)",
            "lower per-cluster demand",
        ]
    return f"{what}: {', '.join(fixes[:-1])}, or {fixes[-1]}"


class InfeasibleAssignment(Infeasible, ValueError):
    """No assignment gives every cluster its demand.

    ``groups`` are the independent bottlenecks (see ``ShortfallGroup``), ``clusters`` every
    cluster in one of them, ``missing`` the number of expert slots no assignment can fill.
    """

    def __init__(
        self, groups: Sequence[ShortfallGroup], cluster_names: Sequence[str] | None = None
    ) -> None:
        self.groups: tuple[ShortfallGroup, ...] = tuple(groups)
        self.clusters: tuple[int, ...] = tuple(sorted(c for g in self.groups for c in g.clusters))
        self.missing: int = sum(g.missing for g in self.groups)
        n = 1 + max(self.clusters, default=0)
        names = list(cluster_names) if cluster_names is not None else [str(c) for c in range(n)]
        shown = [describe_shortfall(g, names) for g in self.groups[:5]]
        more = len(self.groups) - len(shown)
        detail = (
            f"No assignment serves every cluster ({plural(self.missing, 'expert slot')} "
            f"short): " + "; ".join(shown) + (f"; and {more} more such groups" if more else "")
        )
        super().__init__(detail)

    def with_names(self, cluster_names: Sequence[str]) -> InfeasibleAssignment:
        """The same error, with clusters named by id instead of by index."""
        return InfeasibleAssignment(self.groups, cluster_names)


def shortfall_groups(p: TransportProblem, x: IntArray) -> tuple[ShortfallGroup, ...]:
    """The independent bottlenecks of a maximum flow ``x`` that leaves demand unserved.

    T, the nodes that can still reach the sink in the residual graph, is the sink side of
    the canonical minimum cut (the same for every maximum flow). Its clusters form a Hall
    violator: they ask for more than the experts in T (at full capacity) plus one
    assignment from each other eligible expert. Connected pieces of T are independent.
    """
    usable = p.usable
    free = usable & (x == 0)  # residual expert→cluster arcs
    used = x == 1  # residual cluster→expert arcs
    in_c = x.sum(axis=0) < p.demand  # residual cluster→sink arcs
    in_e = np.zeros(p.shape[0], dtype=np.bool_)
    while True:
        add_e = ~in_e & free[:, in_c].any(axis=1)
        in_e |= add_e
        add_c = ~in_c & used[in_e].any(axis=0)
        in_c |= add_c
        if not add_e.any() and not add_c.any():
            break
    e_idx, c_idx = np.flatnonzero(in_e), np.flatnonzero(in_c)
    link = usable[np.ix_(e_idx, c_idx)]
    label = np.full(c_idx.size, -1)
    groups: list[ShortfallGroup] = []
    served = x.sum(axis=0)
    for start in range(c_idx.size):
        if label[start] >= 0:
            continue
        members = np.zeros(c_idx.size, dtype=np.bool_)
        members[start] = True
        while True:
            grown = link[link[:, members].any(axis=1)].any(axis=0) | members
            if (grown == members).all():
                break
            members = grown
        label[members] = len(groups)
        cs = c_idx[members]
        eligible = p.allowed[:, cs].any(axis=1)
        groups.append(
            ShortfallGroup(
                clusters=tuple(int(c) for c in cs),
                demand=int(p.demand[cs].sum()),
                servable=int(served[cs].sum()),
                experts=int((eligible & (p.capacity > 0)).sum()),
                idle_experts=int((eligible & (p.capacity == 0)).sum()),
            )
        )
    return tuple(groups)
