"""Proof 5: every write endpoint refuses a missing, wrong, revoked or wrong-role key.

The endpoints come from the app's own OpenAPI document (every POST, PUT, PATCH and DELETE
under /v1), so a new write endpoint is covered the day it appears. Each gets a request
that would be well-formed (path parameters filled, a minimal body valid against its
schema) and must answer:

* no key, an unknown key, a revoked admin key: 401 with ``WWW-Authenticate: Bearer``;
* an analyst key: 403, everywhere;
* a coordinator key: 403, everywhere except recording its own city's interest in a
  partner (``POST /v1/cities/{own}/interests``) and remembering a list as suggested to it
  (``POST /v1/cities/{own}/suggestions``), which it may do; for another city, 403
  (rating a cluster, ``POST /v1/clusters/{id}/outcomes``, is its city's clusters only:
  every other cluster, one that does not exist included, is 403 too).

Every refusal is problem+json, and after all of them the store holds what it held: the
same rows and revision, no new key, no new proposal.
"""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.settings import Settings
from graph.open import open_store
from tests.reliability.conftest import OWN_CITY, Served
from tests.reliability.support import state

WRITES = {"post", "put", "patch", "delete"}
OTHER_CITY = "pt-amadora"
# The writes a coordinator may make, for its own city only, with a body that succeeds.
OWN_CITY_WRITES = {
    ("post", "/v1/cities/{city_id}/interests"): {"partner_id": "es-getxo", "status": "interested"},
    ("post", "/v1/cities/{city_id}/suggestions"): {"partner_ids": ["es-getxo"]},
}
COORDINATOR_MAY = set(OWN_CITY_WRITES)
PATH_VALUES = {"city_id": OWN_CITY, "id": "pt-amadora", "proposal_id": "prop-0", "key_id": "k"}


def _schema() -> dict[str, Any]:
    return create_app(Settings(store="sqlite:///:memory:")).openapi()


def write_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in schema["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
        if method in WRITES
    ]


def example(schema: dict[str, Any], node: dict[str, Any], depth: int = 0) -> Any:
    """A small instance of a JSON schema: required properties only, first choices."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return example(schema, schema["components"]["schemas"][name], depth + 1)
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in node:
            options = [o for o in node[combo] if o.get("type") != "null"] or node[combo]
            return example(schema, options[0], depth + 1)
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    if "default" in node and node["default"] is not None:
        return node["default"]
    kind = node.get("type", "object")
    if kind == "object":
        required = node.get("required", [])
        props = node.get("properties", {})
        return {k: example(schema, props.get(k, {}), depth + 1) for k in required}
    if kind == "array":
        return [example(schema, node.get("items", {}), depth + 1)] * int(node.get("minItems", 0))
    if kind == "string":
        return "x" * max(1, int(node.get("minLength", 1)))
    if kind == "integer":
        return int(node.get("minimum", 1))
    if kind == "number":
        return float(node.get("minimum", 1))
    if kind == "boolean":
        return False
    return None


def request_for(
    schema: dict[str, Any], method: str, path: str, op: dict[str, Any], **path_values: str
) -> dict[str, Any]:
    values = {**PATH_VALUES, **path_values}
    url = path
    query = {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", values.get(param["name"], "x"))
        elif param["in"] == "query" and param.get("required"):
            query[param["name"]] = example(schema, param.get("schema", {}))
    request: dict[str, Any] = {"method": method.upper(), "url": url, "params": query}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        request["json"] = example(schema, content["application/json"].get("schema", {}))
    return request


SCHEMA = _schema()
OPERATIONS = write_operations(SCHEMA)


def test_the_write_endpoints_are_found_in_the_contract() -> None:
    found = {(m, p) for m, p, _ in OPERATIONS}
    assert len(found) >= 20
    assert {
        ("post", "/v1/ingest"),
        ("post", "/v1/cities"),
        ("delete", "/v1/cities/{id}"),
        ("post", "/v1/keys"),
        ("delete", "/v1/keys/{key_id}"),
        ("post", "/v1/clusters/proposals/{proposal_id}/accept"),
        *COORDINATOR_MAY,
    } <= found


def _documents(served: Served) -> dict[str, int]:
    store = open_store(served.url)
    try:
        return {c: len(store.list_documents(c)) for c in ("api_keys", "cluster_proposals")}
    finally:
        store.close()


def _url_state(served: Served) -> Any:
    store = open_store(served.url)
    try:
        return state(store)
    finally:
        store.close()


def test_every_write_endpoint_refuses_a_missing_wrong_revoked_or_wrong_role_key(
    served: Served,
) -> None:
    before, documents = _url_state(served), _documents(served)
    problems: list[str] = []
    sent = 0

    def expect(who: str | None, code: int, request: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1
        r = served.client.request(**request, headers=served.auth(who))
        where = f"{request['method']} {request['url']} as {who or 'nobody'}"
        if r.status_code != code:
            problems.append(f"{where}: {r.status_code} (want {code}) {r.text[:160]}")
            return
        if r.headers.get("content-type") != "application/problem+json":
            problems.append(f"{where}: {r.headers.get('content-type')}, not problem+json")
        if code == 401 and r.headers.get("www-authenticate", "").lower() != "bearer":
            problems.append(f"{where}: 401 without WWW-Authenticate: Bearer")

    for method, path, op in OPERATIONS:
        request = request_for(SCHEMA, method, path, op)
        for who in (None, "wrong", "revoked"):
            expect(who, 401, request)
        expect("analyst", 403, request)
        if (method, path) in COORDINATOR_MAY:
            expect("coordinator", 403, request_for(SCHEMA, method, path, op, city_id=OTHER_CITY))
        else:
            expect("coordinator", 403, request)

    assert sent == 5 * len(OPERATIONS)
    assert not problems, f"{len(problems)} of {sent} refusals wrong:\n" + "\n".join(problems)
    assert _url_state(served) == before, "a refused write changed the network"
    assert _documents(served) == documents, "a refused write created a key or a proposal"


def test_a_coordinator_may_record_its_own_citys_interest_and_nothing_else(
    served: Served,
) -> None:
    """The exception above is real: the same well-formed request succeeds for its own city."""
    for method, path, op in OPERATIONS:
        if (method, path) not in COORDINATOR_MAY:
            continue
        own = request_for(SCHEMA, method, path, op)
        own["json"] = OWN_CITY_WRITES[(method, path)]
        r = served.client.request(**own, headers=served.auth("coordinator"))
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("who", ["analyst", "coordinator"])
def test_reads_stay_open_to_the_roles_refused_writes(served: Served, who: str) -> None:
    """The refusals above come from the role, not from a broken key."""
    assert served.client.get("/v1/cities", headers=served.auth(who)).status_code == 200
