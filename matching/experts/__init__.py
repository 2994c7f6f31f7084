"""Expert assignment: which experts accompany which clusters of cities, and why.

Shaped inputs -> solve -> report, one module a step, plain arrays between them:

- ``inputs``: the network's data (experts, accepted clusters, vectors) -> ``ExpertClusterData``.
- ``affinity``: expert x cluster affinity from that data, as named terms, and the pairs
  the rules forbid.
- ``problem``: the four arrays every solver takes, validated once (``TransportProblem``).
- ``flow``: the assignment of greatest total affinity, exact, as a min-cost flow.
- ``fair``: the variant that lifts the worst-served cluster first (CP-SAT).
- ``shortfall``: which clusters cannot all be served, and what to relax.
- ``assign``: ``assign_experts``, the whole pipeline with reasons for every pair.

Everything is pure: arrays in, new arrays or frozen dataclasses out, inputs never
modified, no I/O; the only randomness (CP-SAT's search) takes a ``seed``.
"""

from matching.experts.affinity import (
    Affinity,
    AffinityWeights,
    ExpertClusterData,
    build_affinity,
    cosine_similarity,
    member_travel_km,
    place_conflicts,
)
from matching.experts.assign import (
    AssignedPair,
    ExcludedPair,
    ExpertAssignment,
    ExpertLoad,
    FixedPair,
    UnservedCluster,
    assign_experts,
)
from matching.experts.fair import FairnessTimeout, cluster_mean_affinity, solve_fair_assignment
from matching.experts.flow import PricingCertificate, solve_assignment, solve_assignment_pairs
from matching.experts.inputs import expert_inputs
from matching.experts.problem import InvalidAssignmentInput
from matching.experts.shortfall import InfeasibleAssignment, ShortfallGroup, describe_shortfall

__all__ = [
    "Affinity",
    "AffinityWeights",
    "AssignedPair",
    "ExcludedPair",
    "ExpertAssignment",
    "ExpertClusterData",
    "ExpertLoad",
    "FairnessTimeout",
    "FixedPair",
    "InfeasibleAssignment",
    "InvalidAssignmentInput",
    "PricingCertificate",
    "ShortfallGroup",
    "UnservedCluster",
    "assign_experts",
    "build_affinity",
    "cluster_mean_affinity",
    "cosine_similarity",
    "describe_shortfall",
    "expert_inputs",
    "member_travel_km",
    "place_conflicts",
    "solve_assignment",
    "solve_assignment_pairs",
    "solve_fair_assignment",
]
