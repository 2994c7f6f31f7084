"""Liveness (the process answers) and readiness (the store answers, the model is at hand and
the network is prepared: no request will pay for a cold start)."""

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
    summary="The store answers, the embedding model is available and the network is prepared",
    description=(
        "503 until the first revision is prepared (embeddings, partner index, partner model); "
        "`preparation` says which revision is served and what is being prepared, with "
        "progress. A later revision is prepared in the background while the last one serves."
    ),
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
    preparation = service.preparation()
    checks["network"] = "ok" if service.ready else _preparing(preparation)
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks, "preparation": preparation},
        status_code=200 if ok else 503,
    )


def _preparing(preparation: dict[str, Any]) -> str:
    stage, error = preparation.get("preparing"), preparation.get("last_error")
    if stage is None:
        return f"preparing failed: {error}" if error else "not prepared yet"
    done = f" {stage['done']}/{stage['total']}" if stage["total"] else ""
    now = f"preparing revision {stage['revision']}: {stage['stage']}{done}"
    return f"{now} (the last try failed: {error})" if error else now
