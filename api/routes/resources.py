"""The network's rows as REST resources: paginated, filterable reads; admin writes through ingest.

Reads come from the service's snapshot (refreshed when the store's revision moves).
Writes go through exactly the same checks as file ingest (``api.services.rows.write_rows``),
so an API write can never store what a file could not.
"""

import base64
import bisect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model

from api.deps import Admin, Reader, ServiceDep
from api.schemas import IngestReportOut, page_model
from api.services.rows import write_rows
from graph.errors import InvalidInput, NotFound
from graph.model import SPECS, Kind, to_props

router = APIRouter(prefix="/v1", tags=["network"])
MAX_WRITE_ROWS = 5000
MAX_LIMIT = 500


def _encode_cursor(key: tuple[str, ...]) -> str:
    return base64.b64encode("\x1f".join(key).encode(), altchars=b"-_").decode()


def _decode_cursor(cursor: str) -> tuple[str, ...]:
    try:
        text = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput("cursor is not one this API gave out; start again without it") from e
    if not text:
        raise InvalidInput("cursor is not one this API gave out; start again without it")
    return tuple(text.split("\x1f"))


def paginate(kind: Kind, rows: list[Any], limit: int, cursor: str | None) -> dict[str, Any]:
    """Rows are sorted by key in the snapshot; a cursor is the last key of the previous page."""
    spec = SPECS[kind]
    keys = [spec.key_of(r) for r in rows]
    start = bisect.bisect_right(keys, _decode_cursor(cursor)) if cursor else 0
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    return {
        "items": [to_props(r) for r in page],
        "next_cursor": _encode_cursor(keys[start + limit - 1]) if more and page else None,
        "total": len(rows),
    }


FILTERS: dict[Kind, dict[str, str]] = {
    Kind.CITIES: {
        "country": "country",
        "network": "networks",
        "membership": "membership",
        "language": "languages",
    },
    Kind.COORDINATORS: {"city_id": "city_id", "network_id": "network_id"},
    Kind.STAKEHOLDERS: {"city_id": "city_id", "kind": "kind", "theme": "themes"},
    Kind.EXPERTS: {"country": "country", "language": "languages"},
    Kind.PRACTICES: {"city_id": "city_id", "theme": "themes"},
    Kind.CITY_THEMES: {"city_id": "city_id", "theme_id": "theme_id"},
    Kind.INDEX_SCORES: {"city_id": "city_id", "theme_id": "theme_id"},
    Kind.EXPERT_THEMES: {"expert_id": "expert_id", "theme_id": "theme_id"},
    Kind.PARTNERSHIPS: {"city_id": "city_a|city_b", "kind": "kind"},
    Kind.CLUSTERS: {"city_id": "members", "theme": "theme_ids"},
    Kind.ASSIGNMENTS: {"expert_id": "expert_id", "cluster_id": "cluster_id"},
    Kind.PARTNER_INTERESTS: {"city_id": "city_id", "status": "status"},
    Kind.SUGGESTIONS: {"city_id": "city_id", "partner_id": "partner_id"},
    Kind.EXPERT_CONFLICTS: {"expert_id": "expert_id", "city_id": "city_id"},
}


def _matches(row: Any, field: str, value: str) -> bool:
    for name in field.split("|"):
        got = getattr(row, name)
        if (value in got) if isinstance(got, tuple) else (got == value):
            return True
    return False


def _list_route(kind: Kind) -> None:
    filters = FILTERS.get(kind, {})
    fields: dict[str, Any] = {
        "limit": (int, Field(50, ge=1, le=MAX_LIMIT, description="Items per page (1-500).")),
        "cursor": (
            str | None,
            Field(None, max_length=400, description="`next_cursor` of the previous page."),
        ),
        "q": (
            str | None,
            Field(None, max_length=200, description="Case-insensitive text in the name or title."),
        ),
    }
    for param in filters:
        fields[param] = (str | None, Field(None, max_length=200))
    Params = create_model(f"{kind.value.title().replace('_', '')}Query", **fields)

    def list_rows(service: ServiceDep, _: Reader, params: Annotated[Params, Query()]) -> Any:
        rows = list(service.snapshot().rows(kind))
        values = params.model_dump()
        for param, field in filters.items():
            if values.get(param):
                rows = [r for r in rows if _matches(r, field, values[param])]
        if values["q"]:
            needle = values["q"].casefold()
            rows = [
                r
                for r in rows
                if needle in str(getattr(r, "name", getattr(r, "title", ""))).casefold()
            ]
        return JSONResponse(paginate(kind, rows, values["limit"], values["cursor"]))

    router.add_api_route(
        f"/{kind.value.replace('_', '-')}",
        list_rows,
        methods=["GET"],
        response_model=page_model(SPECS[kind].model),
        summary=f"List {kind.value.replace('_', ' ')}",
        name=f"list_{kind.value}",
    )


def _get_route(kind: Kind) -> None:
    model = SPECS[kind].model

    def get_row(service: ServiceDep, _: Reader, id: Annotated[str, Path(max_length=200)]) -> Any:
        for row in service.snapshot().rows(kind):
            if row.id == id:
                return JSONResponse(to_props(row))
        raise NotFound(f"no {kind.value} row with id {id!r}")

    router.add_api_route(
        f"/{kind.value.replace('_', '-')}/{{id}}",
        get_row,
        methods=["GET"],
        response_model=model,
        summary=f"One of the {kind.value}",
        name=f"get_{kind.value}",
        responses={404: {"description": "Not found"}},
    )


class Rows(BaseModel):
    rows: list[dict[str, Any]] = Field(
        max_length=MAX_WRITE_ROWS, description="Rows in the interchange format (at most 5,000)."
    )


def _write_route(kind: Kind) -> None:
    def post_rows(
        service: ServiceDep,
        _: Admin,
        body: Annotated[Rows, Body()],
        dry_run: Annotated[bool, Query(description="Check and count, write nothing.")] = False,
    ) -> Any:
        report = write_rows(
            service.store,
            kind,
            body.rows,
            name="rows",
            refusal=lambda errors: f"{len(errors)} problems in the rows; nothing was written",
            dry_run=dry_run,
        )
        return IngestReportOut.from_report(report)

    router.add_api_route(
        f"/{kind.value.replace('_', '-')}",
        post_rows,
        methods=["POST"],
        response_model=IngestReportOut,
        summary=f"Create or update {kind.value.replace('_', ' ')} (admin)",
        name=f"write_{kind.value}",
        responses={422: {"description": "Invalid rows; nothing written"}},
    )


def _delete_route(kind: Kind) -> None:
    def delete_row(
        service: ServiceDep, _: Admin, id: Annotated[str, Path(max_length=200)]
    ) -> dict[str, Any]:
        if not service.store.delete(kind, id):
            raise NotFound(f"no {kind.value} row with id {id!r}")
        return {"deleted": id, "revision": service.store.revision()}

    router.add_api_route(
        f"/{kind.value.replace('_', '-')}/{{id}}",
        delete_row,
        methods=["DELETE"],
        summary=f"Delete one of the {kind.value} (admin)",
        name=f"delete_{kind.value}",
        responses={404: {"description": "Not found"}, 409: {"description": "Still referenced"}},
    )


READ_KINDS = (
    Kind.CITIES,
    Kind.NETWORKS,
    Kind.THEMES,
    Kind.COORDINATORS,
    Kind.STAKEHOLDERS,
    Kind.EXPERTS,
    Kind.PRACTICES,
    Kind.CITY_THEMES,
    Kind.INDEX_SCORES,
    Kind.EXPERT_THEMES,
    Kind.PARTNERSHIPS,
    Kind.EXPERT_CONFLICTS,
)
_list_route(Kind.CLUSTERS)  # accepted clusters: read here, written by accepting a proposal
_get_route(Kind.CLUSTERS)
_list_route(Kind.ASSIGNMENTS)  # written by POST /v1/experts/assignments with save
_list_route(Kind.MATCH_STATUSES)  # written by POST /v1/interests/mutual/status
_list_route(Kind.OUTCOMES)  # written by POST /v1/clusters/{id}/outcomes
_list_route(Kind.SUGGESTIONS)  # written by POST /v1/cities/{id}/suggestions
_get_route(Kind.OUTCOMES)
for _kind in READ_KINDS:
    _list_route(_kind)
    if SPECS[_kind].is_node:
        _get_route(_kind)
    _write_route(_kind)
    if SPECS[_kind].is_node:
        _delete_route(_kind)
