"""Cluster proposals (propose, read, re-check edits, accept), accepted clusters, expert assignment."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Admin, Reader, ServiceDep
from api.schemas import jsonable
from api.services.clusters import ClusterService
from api.services.expert_conflicts import remove_conflict
from matching.clusters import ClusterParams

router = APIRouter(prefix="/v1", tags=["clusters and experts"])
Ids = list[Annotated[str, Field(min_length=1, max_length=200)]]
Pair = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=2, max_length=2)
]


def get_clusters(request: Request) -> ClusterService:
    service: ClusterService = request.app.state.clusters
    return service


ClustersDep = Annotated[ClusterService, Depends(get_clusters)]
ProposalId = Annotated[str, Path(max_length=100)]


class ProposalIn(BaseModel):
    kind: Literal["thematic", "geographic"] = "thematic"
    themes: Ids | None = Field(
        None, max_length=30, description="Theme ids; default: the most wanted themes."
    )
    min_size: int = Field(4, ge=2, le=50)
    max_size: int = Field(8, ge=2, le=50)
    max_per_city: int | None = Field(
        None, ge=1, le=10, description="Clusters per city; default: from its coordinator's hours."
    )
    n_clusters: int | None = Field(None, ge=1, le=100)
    require_common_language: bool = True
    mixed_membership: bool = True
    allow_single_country: bool = False
    allow_single_network: bool = False
    locked: dict[Annotated[str, Field(max_length=200)], Ids] = Field(
        default_factory=dict,
        max_length=100,
        description="Slot ('<theme>' or '<theme>#<label>') -> cities kept together.",
    )
    excluded: Ids = Field(default_factory=list, max_length=5000)
    keep_together: list[Annotated[Ids, Field(min_length=2, max_length=50)]] = Field(
        default_factory=list,
        max_length=100,
        description="Groups of city ids, each kept in one cluster (a thematic group goes to the "
        "theme its members prioritise most).",
    )
    keep_apart: list[Pair] = Field(
        default_factory=list,
        max_length=500,
        description="Pairs of city ids that must never share a cluster.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    max_span_km: float | None = Field(
        None,
        ge=0,
        le=20100,
        description="Largest distance (km) between two members of a cluster; 0: no limit. "
        "Default: the setting cluster_max_span_km for geographic clusters, none for thematic.",
    )
    fair: bool = Field(
        False,
        description="Keep the coverage, raise the worst-off city's benefit first, then the total; "
        "the price is in the metrics (plain_objective, plain_worst_benefit).",
    )

    def to_params(self, default_span_km: float) -> ClusterParams:
        """The request as parameters; a geographic request without a span gets
        ``default_span_km`` (the setting), a span of 0 lifts the limit."""
        span = self.max_span_km
        if span is None:
            span = default_span_km if self.kind == "geographic" else 0.0
        return ClusterParams(
            kind=self.kind,
            themes=tuple(self.themes) if self.themes else None,
            min_size=self.min_size,
            max_size=self.max_size,
            max_per_city=self.max_per_city,
            n_clusters=self.n_clusters,
            require_common_language=self.require_common_language,
            mixed_membership=self.mixed_membership,
            allow_single_country=self.allow_single_country,
            allow_single_network=self.allow_single_network,
            locked={k: tuple(v) for k, v in self.locked.items()},
            excluded=frozenset(self.excluded),
            seed=self.seed,
            max_span_km=span or None,
            fair=self.fair,
            keep_apart=tuple((a, b) for a, b in self.keep_apart),
        )


class EditedCluster(BaseModel):
    id: str = Field(max_length=200)
    members: Ids = Field(max_length=100)
    theme_ids: Ids = Field(default_factory=list, max_length=10)
    lead_city: str | None = Field(None, max_length=200)


class EditsIn(BaseModel):
    clusters: list[EditedCluster] = Field(max_length=200)
    keep_apart: list[Pair] = Field(
        default_factory=list,
        max_length=500,
        description="More pairs that must not share a cluster (besides the proposal's); "
        "an edit that puts one in a cluster is refused (409).",
    )


class AcceptIn(BaseModel):
    clusters: list[EditedCluster] | None = Field(
        None, max_length=200, description="Edited clusters; default: as proposed."
    )
    period: str | None = Field(None, max_length=40, description="e.g. 2025-2027")


class ReasonOut(BaseModel):
    kind: str
    text: str
    weight: float


class LeadRequestOut(BaseModel):
    city_id: str
    honoured: bool
    reason: str
    could_lead: list[str]


class ProposedCluster(BaseModel):
    id: str
    kind: str
    theme_ids: list[str]
    members: list[str]
    lead_city: str
    working_languages: list[str]
    score: float
    reasons: list[ReasonOut]
    components: dict[str, float]
    locked_slot: str | None
    lead_request: LeadRequestOut | None = None


class Unassigned(BaseModel):
    city_id: str
    name: str
    reason: str
    kind: str


class ConstraintOut(BaseModel):
    name: str
    status: Literal["satisfied", "violated", "relaxed"]
    satisfied: int
    violated: int
    relaxed: int
    detail: str


class ProposalOut(BaseModel):
    id: str
    revision: int
    params: dict[str, Any]
    kind: str
    clusters: list[ProposedCluster]
    unassigned: list[Unassigned]
    constraints: list[ConstraintOut]
    objective: float
    method: str
    seed: int
    metrics: dict[str, Any]
    fair: bool = False
    status: Literal["proposed", "accepted", "discarded"] = "proposed"


class ProposalSummary(BaseModel):
    id: str
    kind: str
    created: str | None
    revision: int | None
    n_clusters: int
    objective: float | None
    status: Literal["proposed", "accepted", "discarded"]
    method: str | None
    fair: bool
    themes: list[str] | None
    seed: int


class ProposalList(BaseModel):
    items: list[ProposalSummary]


class CityMoveOut(BaseModel):
    city_id: str
    name: str
    theme: str
    from_cluster: str | None
    to_cluster: str | None


class TermChangeOut(BaseModel):
    name: str
    before: float
    after: float
    change: float


class RuleChangeOut(BaseModel):
    name: str
    before: str | None
    after: str | None
    violated_before: int
    violated_after: int
    changed: bool


class ComparisonOut(BaseModel):
    a: str
    b: str
    matched: list[dict[str, str | None]]
    moved: list[CityMoveOut]
    added: list[CityMoveOut]
    left_out: list[CityMoveOut]
    terms: list[TermChangeOut]
    rules: list[RuleChangeOut]
    reasons: list[str]
    same_clusters: bool


ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "Infeasible: the detail says which constraint to relax"},
    404: {"description": "No such proposal"},
}


@router.post(
    "/clusters/proposals",
    response_model=ProposalOut,
    status_code=201,
    responses=ERRORS,
    summary="Propose clusters under the given constraints (admin)",
)
def propose(body: ProposalIn, clusters: ClustersDep, _: Admin, request: Request) -> Any:
    default_span = request.app.state.settings.cluster_max_span_km
    params = clusters.keep_together(body.to_params(default_span), body.keep_together)
    return JSONResponse(clusters.propose(params), status_code=201)


@router.get(
    "/clusters/proposals",
    response_model=ProposalList,
    summary="The saved proposals, newest first (proposed, accepted or discarded)",
)
def list_proposals(clusters: ClustersDep, _: Reader) -> Any:
    return JSONResponse({"items": clusters.list()})


class DefaultsOut(BaseModel):
    max_span_km: dict[str, float | None]


@router.get(
    "/clusters/proposals/defaults",
    response_model=DefaultsOut,
    summary="The rules a proposal gets where the request leaves them out",
)
def proposal_defaults(_: Reader, request: Request) -> Any:
    span = request.app.state.settings.cluster_max_span_km
    return {"max_span_km": {"geographic": span, "thematic": None}}


@router.get(
    "/clusters/proposals/{proposal_id}",
    response_model=ProposalOut,
    responses=ERRORS,
    summary="A saved proposal",
)
def get_proposal(proposal_id: ProposalId, clusters: ClustersDep, _: Reader) -> Any:
    return JSONResponse(clusters.get(proposal_id))


@router.get(
    "/clusters/proposals/{proposal_id}/compare/{other_id}",
    response_model=ComparisonOut,
    responses=ERRORS,
    summary="What changed from one proposal to another: moves, objective terms, rule checks",
)
def compare(proposal_id: ProposalId, other_id: ProposalId, clusters: ClustersDep, _: Reader) -> Any:
    return JSONResponse(clusters.compare(proposal_id, other_id))


@router.get(
    "/clusters/proposals/{proposal_id}/compare",
    response_model=ComparisonOut,
    responses=ERRORS,
    summary="The same comparison, the other proposal as ?with=",
)
def compare_with(
    proposal_id: ProposalId,
    clusters: ClustersDep,
    _: Reader,
    other: Annotated[str, Query(alias="with", max_length=100)],
) -> Any:
    return JSONResponse(clusters.compare(proposal_id, other))


@router.post(
    "/clusters/proposals/{proposal_id}/discard",
    response_model=ProposalSummary,
    responses=ERRORS,
    summary="Discard a proposal: still listed, never accepted (admin)",
)
def discard(proposal_id: ProposalId, clusters: ClustersDep, _: Admin) -> Any:
    return JSONResponse(clusters.discard(proposal_id))


@router.post(
    "/clusters/proposals/{proposal_id}/evaluate",
    response_model=ProposalOut,
    responses=ERRORS,
    summary="Re-check edited clusters: scores, reasons and constraints, nothing saved (admin)",
)
def evaluate(proposal_id: ProposalId, body: EditsIn, clusters: ClustersDep, _: Admin) -> Any:
    edits = [c.model_dump() for c in body.clusters]
    return JSONResponse(clusters.evaluate(proposal_id, edits, body.keep_apart))


@router.post(
    "/clusters/proposals/{proposal_id}/accept",
    responses=ERRORS,
    summary="Accept a proposal, optionally edited: its clusters become part of the graph (admin)",
)
def accept(proposal_id: ProposalId, body: AcceptIn, clusters: ClustersDep, _: Admin) -> Any:
    edited = [c.model_dump() for c in body.clusters] if body.clusters else None
    return JSONResponse(clusters.accept(proposal_id, edited, body.period))


class ConflictIn(BaseModel):
    expert_id: str = Field(min_length=1, max_length=200)
    city_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(
        "", max_length=300, description="Shown where the conflict rules a pair out."
    )


class FixedIn(BaseModel):
    expert_id: str = Field(min_length=1, max_length=200)
    cluster_id: str = Field(min_length=1, max_length=200)


class AssignIn(BaseModel):
    cluster_ids: Ids | None = Field(
        None, max_length=500, description="Accepted cluster ids; default: all."
    )
    per_cluster: int = Field(1, ge=1, le=10)
    fair: bool = False
    conflict_same_country: bool | None = Field(
        None,
        description="No expert for a cluster with a member city in the expert's country; "
        "default: the setting expert_conflict_same_country.",
    )
    conflicts: list[ConflictIn] = Field(
        default_factory=list,
        max_length=2000,
        description="For this request: the expert serves no cluster containing the city. "
        "The conflicts stored in the network (GET /v1/expert-conflicts) always apply too; "
        "`conflict_counts` in the answer says how many came from each.",
    )
    fixed: list[FixedIn] = Field(
        default_factory=list,
        max_length=2000,
        description="Pairs to keep: each is honoured (taking a seat and a capacity) or "
        "refused with a reason (see `fixed` in the answer).",
    )
    save: bool = Field(
        False, description="Record the pairs in the graph (replacing these clusters' earlier ones)."
    )


@router.post(
    "/experts/assignments",
    summary="The optimal assignment of experts to accepted clusters (admin)",
    responses={
        404: {"description": "Unknown cluster"},
        422: {"description": "Nothing to assign, or a conflict names an unknown expert or city"},
    },
)
def assign(body: AssignIn, service: ServiceDep, _: Admin, request: Request) -> Any:
    same_country = body.conflict_same_country
    if same_country is None:
        same_country = request.app.state.settings.expert_conflict_same_country
    result, rows, sources = service.assign_experts(
        body.cluster_ids,
        per_cluster=body.per_cluster,
        fair=body.fair,
        conflict_same_country=same_country,
        conflicts=[(c.expert_id, c.city_id, c.reason) for c in body.conflicts],
        fixed=[(f.expert_id, f.cluster_id) for f in body.fixed],
    )
    out = jsonable(result)
    for u in out["unserved"]:
        u["missing"] = u["demand"] - u["assigned"]
        u["message"] = u["relax"]
    members = {c.id: c.members for c in rows}
    for x in out["excluded"]:
        x["source"] = sources.source_of(x["expert_id"], members.get(x["cluster_id"], ()))
    out["conflict_counts"] = sources.counts()
    out["conflict_same_country"] = same_country
    out["saved"] = service.save_assignment(result, rows) if body.save else 0
    return JSONResponse(out)


class ConflictDeletedOut(BaseModel):
    deleted: dict[str, str]
    revision: int


@router.delete(
    "/expert-conflicts/{expert_id}/{city_id}",
    response_model=ConflictDeletedOut,
    summary="Delete one stored expert conflict (admin)",
    responses={404: {"description": "Unknown expert or city, or no conflict stored for the pair"}},
)
def delete_expert_conflict(
    expert_id: Annotated[str, Path(max_length=200)],
    city_id: Annotated[str, Path(max_length=200)],
    service: ServiceDep,
    _: Admin,
) -> Any:
    """The generic resource routes list (GET) and write (POST) ``expert_conflicts`` rows;
    a relationship row has no id of its own, so its delete names the pair."""
    return remove_conflict(service.store, service.snapshot(), expert_id, city_id)
