"""Thematic and geographic cluster proposals for a network of cities.

``propose_clusters(inp, params)`` takes plain arrays (:class:`ClusterInput`, built by
:func:`cluster_input` from a network's arrays) and request parameters
(:class:`ClusterParams`) and returns a :class:`ClusterProposal`: clusters with their
lead city, working languages, cohesion and plain-language reasons; the cities left out
and why; the objective; the status of every hard constraint; the method used.
``evaluate_clusters(inp, params, groups)`` describes and checks clusters a planner has
edited, as they stand (no solving; broken rules reported rather than refused), and
``check_groups`` judges any grouping by the same rules.

Hard constraints (checked on every proposal, see ``ClusterProposal.constraints``)
    * size: ``min_size <= |cluster| <= max_size``;
    * capacity: a city is in at most ``max_per_city`` clusters (default: its
      ``capacity``), and in at most one cluster per theme;
    * lead: a member *can lead*: it scores ``>= lead_min_strength`` on the theme in the
      Index, or prioritises it at 3 or more and has a good practice on it
      (``practices``); for a geographic cluster, the same on any theme. A network with
      no Index score and no good practice at all cannot support the rule: it is waived
      (status *relaxed*, with the reason) and the member most like the others is
      proposed as lead (``pools.rule_waivers``);
    * common language: one language every member speaks (``require_common_language``);
      waived in the same way when no city lists a language;
    * mixed membership: international and national-network members together. When a
      pool has fewer cities of the scarcer kind than clusters, only that many clusters
      can be mixed; the others are reported as *relaxed*;
    * not one country / not one national network unless ``allow_single_country`` /
      ``allow_single_network``;
    * span: no two members more than ``max_span_km`` apart (great-circle km) when the
      request sets one: the API and CLI give geographic requests the setting
      ``cluster_max_span_km`` (1,500 km), so a geographic cluster is a region; thematic
      requests have none unless asked. A city with no candidate near enough is left out
      with the reason (``"no other candidate within 1,500 km"``), never forced into a far
      cluster;
    * locked groups together in one cluster each (``locked``: slot -> city ids; for a
      thematic request the slot names the theme: ``"education"`` or ``"education#2"``);
      excluded cities nowhere; ``n_clusters`` per theme (thematic) or in total
      (geographic) when given.

Objective (both methods; ``rules``)
    ``coverage_weight * sum(priority / 5 of each membership) + sum over clusters of
    sum over member pairs (affinity - gamma)``. Placing willing cities comes first;
    among equally covering proposals the most cohesive wins. ``gamma`` (per pool, in
    ``metrics``) is the affinity above which a pair counts as a good pair: the pool's
    pair ranked ``k * (target - 1) / 2`` with ``target = (min_size + max_size) / 2``, as
    in a partition into groups of the target size. It is also Leiden's CPM resolution.

Fair objective (``params.fair``; ``rules``, ``exact.solve_fair``, ``fair``)
    A placed city's *benefit* from a cluster is its priority for the theme / 5 (1 in a
    geographic cluster) plus its mean affinity to its cluster-mates. Fair keeps the plain
    proposal's coverage, raises the smallest benefit first (exact: lexicographic max-min
    by bisection on CP-SAT feasibility models, then the objective at that minimum; large:
    moves and swaps that only ever raise it), then the total. The proposal reports the
    price: ``objective`` and ``metrics["worst_benefit"]`` beside the plain proposal's
    ``plain_objective`` and ``plain_worst_benefit``; a fair proposal's worst-off benefit is
    never below the plain one's on the same input.

Methods
    * exact (``exact``): OR-Tools CP-SAT on all pools at once, used when the pools hold
      at most ``exact_max_candidates`` candidate memberships in all (``method="auto"``)
      or when asked; deterministic and warm-started from the heuristic's proposal, so it
      is never worse. An infeasible model is diagnosed (``diagnosis``) by re-solving with
      one constraint relaxed at a time.
    * leiden+repair (``large``, ``seeding``, ``repair``): capacity allocated to each
      city's highest priorities, Leiden (CPM, seeded) per pool, then repair to the hard
      constraints and local search. Only a locked cluster can come out violating a
      constraint, and then it is reported as violated.

Modules, in the order a request flows: ``model`` (input, parameters, proposal, errors),
``inputs`` and ``affinity`` (a network's arrays -> ``ClusterInput``), ``pools``
(request -> pools, early refusals), ``rules`` (what both solvers share), ``exact``,
``large`` (with ``pool_state``, ``seeding``, ``repair``), ``statuses``, ``report``,
``diagnosis``, ``fair`` (the worst-off raised on the large path) and ``propose`` (the
entry points).

Infeasible requests raise :class:`ClusterInfeasible` (a ``ValueError``; HTTP 409) whose
message names the constraint to relax and by how much; malformed input raises
:class:`ClusterInputError` (a ``ValueError``; HTTP 422).
"""

from matching.clusters.affinity import affinity_matrix
from matching.clusters.inputs import cluster_input
from matching.clusters.model import (
    ClusterInfeasible,
    ClusterInput,
    ClusterInputError,
    ClusterParams,
    ClusterProposal,
    ConstraintStatus,
    ProposedCluster,
    UnassignedCity,
)
from matching.clusters.propose import check_groups, evaluate_clusters, propose_clusters

__all__ = [
    "ClusterInfeasible",
    "ClusterInput",
    "ClusterInputError",
    "ClusterParams",
    "ClusterProposal",
    "ConstraintStatus",
    "ProposedCluster",
    "UnassignedCity",
    "affinity_matrix",
    "check_groups",
    "cluster_input",
    "evaluate_clusters",
    "propose_clusters",
]
