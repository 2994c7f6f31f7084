"""Outcomes: how an accepted cluster, or an expert's visit to it, went (a rating and a note).

The secretariat rates any cluster; a coordinator rates its own city's clusters, as its
city. Read them back from ``GET /v1/outcomes`` (and export them with everything else).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from api.deps import Caller, ServiceDep
from api.schemas import jsonable

router = APIRouter(prefix="/v1", tags=["outcomes"])


class OutcomeIn(BaseModel):
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent).")
    on: date | None = Field(None, description="When it was judged (default: today).")
    expert_id: str | None = Field(
        None, max_length=200, description="Rate this expert's visit rather than the cluster."
    )
    city_id: str | None = Field(
        None,
        max_length=200,
        description="The member city giving the rating (a coordinator's own city; empty: "
        "the secretariat).",
    )
    note: str | None = Field(None, max_length=2000)


@router.post(
    "/clusters/{cluster_id}/outcomes",
    summary="Record how an accepted cluster, or one expert's visit to it, went (admin; a "
    "coordinator for its own member city)",
    responses={409: {"description": "Not a member city, or not an expert of the cluster"}},
)
def record_outcome(
    cluster_id: Annotated[str, Path(max_length=200)],
    body: OutcomeIn,
    service: ServiceDep,
    caller: Caller,
) -> dict[str, Any]:
    city_id = body.city_id
    if caller.role == "coordinator":
        if city_id not in (None, caller.city_id):
            raise HTTPException(403, f"this coordinator key is for {caller.city_id}, not {city_id}")
        city_id = caller.city_id  # a coordinator rates as its city, its city's clusters only
        mine = {c.id for c in service.snapshot().clusters if city_id in c.members}
        if cluster_id not in mine:
            raise HTTPException(
                403,
                f"this coordinator key is for {city_id}, which is not a member of an accepted "
                f"cluster {cluster_id!r}",
            )
    elif caller.role != "admin":
        raise HTTPException(403, f"a {caller.role} key cannot do this")
    outcome = service.record_outcome(
        cluster_id,
        body.rating,
        on=body.on.isoformat() if body.on else None,
        expert_id=body.expert_id,
        city_id=city_id,
        note=body.note,
    )
    return dict(jsonable(outcome))
