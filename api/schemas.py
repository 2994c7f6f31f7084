"""Response models the OpenAPI contract is written from (requests are validated by them too)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, create_model

from ingest.load import IngestReport

_PAGES: dict[type[Any], type[BaseModel]] = {}


def page_model(item: type[Any]) -> type[BaseModel]:
    """``{"items": [...], "next_cursor": ..., "total": n}`` for one row type (one model per type)."""
    if item not in _PAGES:
        _PAGES[item] = _page(item)
    return _PAGES[item]


def _page(item: type[Any]) -> type[BaseModel]:
    return create_model(
        f"{item.__name__}Page",
        items=(list[item], ...),  # type: ignore[valid-type]
        next_cursor=(
            str | None,
            Field(None, description="Pass as `cursor` for the next page; null on the last."),
        ),
        total=(int, Field(..., description="Rows matching the filters.")),
    )


class RowErrorOut(BaseModel):
    file: str
    line: int
    column: str | None
    message: str


class KindCounts(BaseModel):
    created: int
    updated: int
    unchanged: int


class IngestReportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[RowErrorOut]
    written: bool
    dry_run: bool
    revision: int
    by_kind: dict[str, KindCounts]
    preparing: bool = False
    """The new revision is being prepared in the background (embeddings, partner index and
    model); answers come from the previous one until ``/health/ready`` serves this one."""

    @classmethod
    def from_report(cls, report: IngestReport) -> IngestReportOut:
        return cls.model_validate(report.as_dict())


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def jsonable(obj: Any) -> Any:
    """Dataclasses (with numpy scalars inside) as plain JSON values."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kind = type(obj)
        if kind not in _ADAPTERS:
            _ADAPTERS[kind] = TypeAdapter(kind)
        try:
            return _ADAPTERS[kind].dump_python(obj, mode="json")
        except Exception:  # numpy scalars or arrays pydantic cannot serialise: walk by hand
            pass
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return obj
