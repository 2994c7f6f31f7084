"""API keys: created once, shown once, kept only as SHA-256 hashes, revocable.

A key is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is enough (no
password hashing needed: nothing to brute-force). The hash is the key's id in the
store; the comparison after lookup is constant-time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from graph.errors import InvalidInput, NotFound
from graph.model import Kind
from graph.store import GraphStore

Role = Literal["admin", "coordinator", "analyst"]
ROLES: tuple[Role, ...] = ("admin", "coordinator", "analyst")
COLLECTION = "api_keys"
PREFIX = "icc_"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    city_id: str | None
    label: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    store: GraphStore, role: str, *, city_id: str | None = None, label: str = ""
) -> tuple[str, Principal]:
    """Make a key; return it (to show once) and what it grants."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "coordinator":
        if not city_id:
            raise InvalidInput("a coordinator key is bound to one city: give --city")
        if city_id not in store.ids(Kind.CITIES):
            raise NotFound(f"no city with id {city_id!r}")
    elif city_id:
        raise InvalidInput("only coordinator keys are bound to a city")
    key = PREFIX + secrets.token_urlsafe(32)
    key_id = _hash(key)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    store.put_document(
        COLLECTION,
        key_id,
        {
            "key_id": key_id,
            "role": role,
            "city_id": city_id,
            "label": label,
            "created": now,
            "revoked": None,
            "hint": key[:8],
        },
    )
    return key, Principal(key_id, role, city_id, label)


def authenticate(store: GraphStore, key: str) -> Principal | None:
    """The principal a key stands for, or None (unknown or revoked)."""
    key_id = _hash(key)
    doc = store.get_document(COLLECTION, key_id)
    if doc is None or doc.get("revoked") or not hmac.compare_digest(str(doc.get("key_id")), key_id):
        return None
    return Principal(key_id, doc["role"], doc.get("city_id"), doc.get("label", ""))


def revoke_key(store: GraphStore, key_or_id: str) -> None:
    """Revoke by the key itself or by its id (the hash shown by ``keys list``)."""
    for key_id in (key_or_id, _hash(key_or_id)):
        doc = store.get_document(COLLECTION, key_id)
        if doc is not None:
            doc["revoked"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            store.put_document(COLLECTION, key_id, doc)
            return
    raise NotFound("no such key")


def list_keys(store: GraphStore) -> list[dict[str, object]]:
    return [{k: v for k, v in d.items()} for d in store.list_documents(COLLECTION)]
