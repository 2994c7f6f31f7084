"""Typed dependencies: the store, the service and the caller's role, resolved once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.keys import Principal, authenticate
from api.services.network import NetworkService
from graph.store import GraphStore

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer icc_...`")


def get_service(request: Request) -> NetworkService:
    service: NetworkService = request.app.state.service
    return service


def get_store(request: Request) -> GraphStore:
    return get_service(request).store


ServiceDep = Annotated[NetworkService, Depends(get_service)]
StoreDep = Annotated[GraphStore, Depends(get_store)]


def get_principal(
    store: StoreDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            401,
            "send an API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = authenticate(store, credentials.credentials)
    if principal is None:
        raise HTTPException(
            401, "this API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def require_admin(caller: Caller) -> Principal:
    if caller.role != "admin":
        raise HTTPException(
            403, f"only the secretariat (admin) may do this; this key is {caller.role}"
        )
    return caller


def require_reader(caller: Caller) -> Principal:
    return caller


def require_analyst_or_admin(caller: Caller) -> Principal:
    if caller.role not in ("admin", "analyst"):
        raise HTTPException(
            403, f"only admin and analyst keys may read this; this key is {caller.role}"
        )
    return caller


Admin = Annotated[Principal, Depends(require_admin)]
Reader = Annotated[Principal, Depends(require_reader)]
AnalystOrAdmin = Annotated[Principal, Depends(require_analyst_or_admin)]


def check_own_city(caller: Principal, city_id: str) -> None:
    """A coordinator acts only for its own city; admins for any; analysts write nothing."""
    if caller.role == "admin":
        return
    if caller.role == "coordinator" and caller.city_id == city_id:
        return
    if caller.role == "coordinator":
        raise HTTPException(403, f"this coordinator key is for {caller.city_id}, not {city_id}")
    raise HTTPException(403, f"a {caller.role} key cannot do this")
