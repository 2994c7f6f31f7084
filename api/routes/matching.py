"""Partners, partner interests, network analytics and graph exports."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from api.deps import (
    Admin,
    AnalystOrAdmin,
    Caller,
    Reader,
    ServiceDep,
    bearer,
    check_own_city,
    get_principal,
    get_service,
)
from api.schemas import IngestReportOut, jsonable
from api.services import MAX_K
from graph.model import MatchStep
from matching.analytics import export as graph_export
from matching.partners import PartnerFilters
from matching.partners.holdout import MAX_HOLDOUT, MIN_HOLDOUT
from matching.partners.memory import Again

router = APIRouter(prefix="/v1", tags=["matching"])
CityId = Annotated[str, Path(max_length=200, description="A city id, e.g. pt-amadora.")]


class ReasonOut(BaseModel):
    kind: str
    text: str
    weight: float


class SuggestedBeforeOut(BaseModel):
    first_on: str
    last_on: str
    rank: int = Field(description="Its rank the last time it was suggested.")
    times: int
    answer: Literal["interested", "not_for_us"] | None


class SuggestionOut(BaseModel):
    city_id: str
    name: str
    country: str
    score: float
    reasons: list[ReasonOut]
    components: dict[str, float]
    forced: bool
    suggested_before: SuggestedBeforeOut | None = Field(
        description="When this partner was suggested to the city before, if it was."
    )


class PartnersOut(BaseModel):
    city_id: str
    suggestions: list[SuggestionOut]
    considered: int
    ranker: str
    hidden_as_suggested: int = Field(
        description="Partners suggested to the city before and left out (again=hide)."
    )


@router.get(
    "/cities/{city_id}/partners",
    response_model=PartnersOut,
    summary="Ranked partner cities, each with its reasons",
    responses={
        403: {"description": "A coordinator asked for another city"},
        404: {"description": "Unknown city"},
    },
)
async def partners(
    request: Request,
    city_id: CityId,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    theme: Annotated[str | None, Query(max_length=200)] = None,
    language: Annotated[
        list[str] | None,
        Query(max_length=10, description="The partner speaks one of these (ISO 639-1)."),
    ] = None,
    max_km: Annotated[float | None, Query(gt=0, le=25000)] = None,
    membership: Literal["international", "national"] | None = None,
    include_current: bool = False,
    interpretation: Annotated[
        bool,
        Query(
            description="Also list cities that share no working language with this one "
            "(an interpreter will be arranged). Off: only cities you can talk to directly."
        ),
    ] = False,
    force: Annotated[
        list[str] | None,
        Query(max_length=20, description="City ids always listed (after the ranked ones)."),
    ] = None,
    forbid: Annotated[
        list[str] | None, Query(max_length=200, description="City ids never listed.")
    ] = None,
    again: Annotated[
        Again | None,
        Query(
            description="A partner suggested to the city before: 'mark' lists it again saying "
            "when, 'hide' leaves it out. Default: the setting suggestions_again."
        ),
    ] = None,
) -> Any:
    # The busiest endpoint: the key check, the suggestions and the JSON run in one worker
    # thread (the same checks as the ``Caller`` dependency, without a thread hop for each
    # dependency); the store is never touched on the event loop.
    filters = PartnerFilters(
        theme=theme,
        languages=tuple(language or ()),
        max_distance_km=max_km,
        membership=membership,
        exclude_current=not include_current,
        shared_language=not interpretation,
        forced=tuple(dict.fromkeys(force or ())),
        forbidden=tuple(dict.fromkeys(forbid or ())),
    )
    service = get_service(request)
    shown_again = again or request.app.state.settings.suggestions_again

    def answer() -> Response:
        caller = get_principal(service.store, credentials)
        if caller.role == "coordinator":
            check_own_city(caller, city_id)
        body = service.partners_json(city_id, k=k, filters=filters, again=shown_again)
        return Response(body, media_type="application/json")

    return await anyio.to_thread.run_sync(answer, limiter=_PARTNER_THREADS)


_PARTNER_THREADS = anyio.CapacityLimiter(2)
"""Partner requests compute in at most this many threads at once, the others waiting their
turn in order: with 40 threads all computing, the interpreter lock is handed round
unfairly and some requests wait many times longer than the rest."""


class ShownIn(BaseModel):
    partner_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=MAX_K, description="The list as shown, best first."
    )
    on: date | None = Field(None, description="When it was shown (default: today).")


class ShownOut(BaseModel):
    city_id: str
    on: str
    remembered: int


@router.post(
    "/cities/{city_id}/suggestions",
    response_model=ShownOut,
    summary="Remember a partner list as shown to the city (its coordinator or admin): later "
    "lists mark or hide these partners",
    responses={422: {"description": "Unknown city or partner, or a partner named twice"}},
)
def remember_suggestions(
    city_id: CityId, body: ShownIn, service: ServiceDep, caller: Caller
) -> Any:
    check_own_city(caller, city_id)
    on = body.on.isoformat() if body.on else None
    return service.remember_suggestions(city_id, body.partner_ids, on)


class InterestIn(BaseModel):
    partner_id: str = Field(min_length=1, max_length=200)
    status: Literal["interested", "not_for_us"]
    note: str | None = Field(None, max_length=2000)


@router.post(
    "/cities/{city_id}/interests",
    response_model=IngestReportOut,
    summary="Record the city's answer to a suggested partner (its coordinator or admin)",
)
def record_interest(city_id: CityId, body: InterestIn, service: ServiceDep, caller: Caller) -> Any:
    check_own_city(caller, city_id)
    report = service.record_answer(city_id, body.partner_id, body.status, body.note)
    return IngestReportOut.from_report(report)


@router.get("/interests", summary="Every city's answers to suggested partners (admin, analyst)")
def interests(service: ServiceDep, _: AnalystOrAdmin) -> list[dict[str, Any]]:
    return [jsonable(i) for i in service.snapshot().partner_interests]


@router.get(
    "/interests/mutual",
    summary="Mutual matches: pairs of cities that each answered 'interested' (admin, analyst)",
)
def mutual_interests(service: ServiceDep, _: AnalystOrAdmin) -> list[dict[str, Any]]:
    return [jsonable(m) for m in service.mutual_matches()]


class MatchStatusIn(BaseModel):
    city_a: str = Field(min_length=1, max_length=200)
    city_b: str = Field(min_length=1, max_length=200)
    status: MatchStep
    on: date | None = Field(None, description="When it happened (default: today).")
    note: str | None = Field(None, max_length=2000)


@router.post(
    "/interests/mutual/status",
    summary="Record the next step of a mutual match: introduced, meeting held, project "
    "started, partnership signed (which also records the partnership) or no further contact "
    "(admin)",
    responses={409: {"description": "The two cities are not a mutual match"}},
)
def record_match_status(body: MatchStatusIn, service: ServiceDep, _: Admin) -> dict[str, Any]:
    on = body.on.isoformat() if body.on else None
    match = service.record_match_status(body.city_a, body.city_b, body.status, on, body.note)
    return dict(jsonable(match))


@router.get(
    "/cities/{city_id}/interests",
    summary="A city's answers, the answers other cities gave about it, and its mutual matches "
    "(its coordinator, admin, analyst)",
)
def city_interests(city_id: CityId, service: ServiceDep, caller: Caller) -> dict[str, Any]:
    if caller.role == "coordinator":
        check_own_city(caller, city_id)
    return service.city_interests(city_id)


@router.get(
    "/network/partner-evaluation",
    summary="How good partner suggestions are here: held-out ties against baselines (admin, analyst)",
)
def partner_evaluation(
    service: ServiceDep,
    _: AnalystOrAdmin,
    holdout: Annotated[float, Query(ge=MIN_HOLDOUT, le=MAX_HOLDOUT)] = 0.1,
    splits: Annotated[int, Query(ge=1, le=20)] = 5,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Any:
    return jsonable(service.evaluate_partners(holdout=holdout, splits=splits, k=k, seed=seed))


@router.get("/network/stats", summary="Components, centrality, bridges, communities, gaps")
def network_stats(
    service: ServiceDep, _: Reader, seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0
) -> dict[str, Any]:
    return service.stats(seed=seed).to_dict()


MEDIA = {
    "graphml": "application/graphml+xml",
    "gexf": "application/gexf+xml",
    "csv": "text/csv; charset=utf-8",
}


@router.get(
    "/network/graph",
    summary="Nodes and edges for a view; GraphML, GEXF or CSV on request",
    responses={200: {"content": {"application/json": {}, **{m: {} for m in MEDIA.values()}}}},
)
def network_graph(
    service: ServiceDep,
    _: Reader,
    format: Literal["json", "graphml", "gexf", "csv-nodes", "csv-edges"] = "json",
    themes: bool = False,
    networks: bool = False,
) -> Any:
    communities = service.stats().communities.community_of()
    view = graph_export.network_view(
        service.snapshot(), community_of=communities, themes=themes, networks=networks
    )
    if format == "json":
        return JSONResponse(jsonable(view))
    if format == "graphml":
        return Response(graph_export.graphml_bytes(view), media_type=MEDIA["graphml"])
    if format == "gexf":
        return Response(graph_export.gexf_bytes(view), media_type=MEDIA["gexf"])
    texts = graph_export.csv_texts(view)
    name = "nodes.csv" if format == "csv-nodes" else "edges.csv"
    return Response(
        texts[name],
        media_type=MEDIA["csv"],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
