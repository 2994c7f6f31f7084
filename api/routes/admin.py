"""The secretariat's writes: whole-dataset ingest (JSON or a zip of CSV files) and API keys."""

from __future__ import annotations

import io
import pathlib
import tempfile
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from api.deps import Admin, Caller, ServiceDep
from api.keys import Role, create_key, list_keys, revoke_key
from api.schemas import IngestReportOut
from graph.errors import InvalidInput
from ingest.load import ingest_path

router = APIRouter(prefix="/v1", tags=["admin"])
MAX_ARCHIVE_FILES = 20
MAX_UNPACKED_BYTES = 200 * 1024 * 1024


@router.post(
    "/ingest",
    response_model=IngestReportOut,
    summary="Load a dataset atomically: a JSON document, or a zip of CSV files (admin)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": 'The interchange format as JSON: {"cities": [...], ...}',
                    }
                },
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
    responses={
        413: {"description": "Body larger than the limit"},
        422: {"description": "Bad rows (see errors)"},
    },
)
async def ingest(
    request: Request,
    service: ServiceDep,
    _: Admin,
    dry_run: bool = False,
    skip_invalid: bool = False,
) -> Any:
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        if kind in ("application/zip", "application/x-zip-compressed"):
            target = _unzip(body, folder)
        elif kind in ("application/json", ""):
            target = folder / "request.json"
            target.write_bytes(body)
        else:
            raise InvalidInput(f"send application/json or application/zip, not {kind!r}")
        report = ingest_path(target, service.store, dry_run=dry_run, skip_invalid=skip_invalid)
    out = IngestReportOut.from_report(report)
    if report.written:
        # embeddings, index and partner model for the new revision, in the background;
        # until they are ready, answers come from the last revision (/health/ready shows it)
        service.refresh_in_background()
        out.preparing = True
    if report.errors and not skip_invalid:
        raise InvalidInput(
            f"{len(report.errors)} bad rows; nothing was written",
            [
                {
                    "field": f"{e.file}:{e.line}" + (f" [{e.column}]" if e.column else ""),
                    "message": e.message,
                }
                for e in report.errors[:1000]
            ],
        )
    return out


def _unzip(body: bytes, folder: pathlib.Path) -> pathlib.Path:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as e:
        raise InvalidInput("the body is not a valid zip archive") from e
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_ARCHIVE_FILES:
        raise InvalidInput(f"the archive holds {len(members)} files; at most {MAX_ARCHIVE_FILES}")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise InvalidInput("the archive unpacks to more than 200 MB")
    for m in members:
        name = pathlib.PurePosixPath(
            m.filename.replace("\\", "/")
        ).name  # flatten: no paths from the archive reach the disk
        if not name.lower().endswith(".csv"):
            continue
        (folder / name).write_bytes(archive.read(m))
    return folder


class MeOut(BaseModel):
    role: Role
    city_id: str | None
    label: str


@router.get("/me", response_model=MeOut, summary="What this API key may do (every role)")
def me(caller: Caller) -> MeOut:
    return MeOut(role=caller.role, city_id=caller.city_id, label=caller.label)


class KeyIn(BaseModel):
    role: Role
    city_id: str | None = Field(None, max_length=200, description="Required for coordinator keys.")
    label: str = Field("", max_length=200)


class KeyOut(BaseModel):
    key: str = Field(description="Shown once: store it now.")
    key_id: str
    role: Role
    city_id: str | None


@router.post("/keys", response_model=KeyOut, status_code=201, summary="Create an API key (admin)")
def new_key(body: KeyIn, service: ServiceDep, _: Admin) -> KeyOut:
    key, principal = create_key(service.store, body.role, city_id=body.city_id, label=body.label)
    return KeyOut(key=key, key_id=principal.key_id, role=principal.role, city_id=principal.city_id)


@router.get("/keys", summary="List API keys (hashes only, never the keys) (admin)")
def keys(service: ServiceDep, _: Admin) -> list[dict[str, Any]]:
    return [dict(k) for k in list_keys(service.store)]


@router.delete(
    "/keys/{key_id}",
    summary="Revoke an API key (admin)",
    responses={404: {"description": "No such key"}},
)
def revoke(
    key_id: Annotated[str, Path(max_length=200)], service: ServiceDep, _: Admin
) -> dict[str, str]:
    revoke_key(service.store, key_id)
    return {"revoked": key_id}
