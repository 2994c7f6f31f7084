"""Liveness (the process answers) and readiness (the store answers and the model is at hand)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServiceDep
from graph.errors import StoreUnavailable

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The process is up")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="The store answers and the embedding model is available",
    responses={503: {"description": "Not ready"}},
)
def ready(service: ServiceDep) -> Any:
    checks: dict[str, str] = {}
    try:
        service.store.ping()
        checks["store"] = "ok"
    except StoreUnavailable as e:
        checks["store"] = e.detail
    checks["model"] = "ok" if service.model_available() else "the embedding model cannot be found"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
