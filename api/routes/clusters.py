"""Cluster proposals (propose, read, re-check edits, accept), accepted clusters, expert assignment."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Admin, Reader, ServiceDep
from api.schemas import jsonable
from api.services.clusters import ClusterService
from matching.clusters import ClusterParams

router = APIRouter(prefix="/v1", tags=["clusters and experts"])
Ids = list[Annotated[str, Field(min_length=1, max_length=200)]]


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
    seed: int = Field(0, ge=0, le=2**31 - 1)

    def to_params(self) -> ClusterParams:
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
        )


class EditedCluster(BaseModel):
    id: str = Field(max_length=200)
    members: Ids = Field(max_length=100)
    theme_ids: Ids = Field(default_factory=list, max_length=10)
    lead_city: str | None = Field(None, max_length=200)


class EditsIn(BaseModel):
    clusters: list[EditedCluster] = Field(max_length=200)


class AcceptIn(BaseModel):
    clusters: list[EditedCluster] | None = Field(
        None, max_length=200, description="Edited clusters; default: as proposed."
    )
    period: str | None = Field(None, max_length=40, description="e.g. 2025-2027")


class ReasonOut(BaseModel):
    kind: str
    text: str
    weight: float


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
def propose(body: ProposalIn, clusters: ClustersDep, _: Admin) -> Any:
    return JSONResponse(clusters.propose(body.to_params()), status_code=201)


@router.get(
    "/clusters/proposals/{proposal_id}",
    response_model=ProposalOut,
    responses=ERRORS,
    summary="A saved proposal",
)
def get_proposal(proposal_id: ProposalId, clusters: ClustersDep, _: Reader) -> Any:
    return JSONResponse(clusters.get(proposal_id))


@router.post(
    "/clusters/proposals/{proposal_id}/evaluate",
    response_model=ProposalOut,
    responses=ERRORS,
    summary="Re-check edited clusters: scores, reasons and constraints, nothing saved (admin)",
)
def evaluate(proposal_id: ProposalId, body: EditsIn, clusters: ClustersDep, _: Admin) -> Any:
    return JSONResponse(clusters.evaluate(proposal_id, [c.model_dump() for c in body.clusters]))


@router.post(
    "/clusters/proposals/{proposal_id}/accept",
    responses=ERRORS,
    summary="Accept a proposal, optionally edited: its clusters become part of the graph (admin)",
)
def accept(proposal_id: ProposalId, body: AcceptIn, clusters: ClustersDep, _: Admin) -> Any:
    edited = [c.model_dump() for c in body.clusters] if body.clusters else None
    return JSONResponse(clusters.accept(proposal_id, edited, body.period))


class AssignIn(BaseModel):
    cluster_ids: Ids | None = Field(
        None, max_length=500, description="Accepted cluster ids; default: all."
    )
    per_cluster: int = Field(1, ge=1, le=10)
    fair: bool = False
    save: bool = Field(
        False, description="Record the pairs in the graph (replacing these clusters' earlier ones)."
    )


@router.post(
    "/experts/assignments",
    summary="The optimal assignment of experts to accepted clusters (admin)",
    responses={404: {"description": "Unknown cluster"}, 422: {"description": "Nothing to assign"}},
)
def assign(body: AssignIn, service: ServiceDep, _: Admin, request: Request) -> Any:
    settings = request.app.state.settings
    result, rows = service.assign_experts(
        body.cluster_ids,
        per_cluster=body.per_cluster,
        fair=body.fair,
        conflict_same_country=settings.expert_conflict_same_country,
    )
    experts = {e.id: e.name for e in service.snapshot().experts}
    names = {c.id: c.name for c in rows}
    out = jsonable(result)
    for pair in out["pairs"]:
        pair["expert_name"] = experts.get(pair["expert_id"], pair["expert_id"])
        pair["cluster_name"] = names.get(pair["cluster_id"], pair["cluster_id"])
    for load in out["loads"]:
        load["name"] = experts.get(load["expert_id"], load["expert_id"])
    for u in out["unserved"]:
        u["missing"] = u["demand"] - u["assigned"]
        u["message"] = u["relax"]
    out["saved"] = service.save_assignment(result, rows) if body.save else 0
    return JSONResponse(out)
