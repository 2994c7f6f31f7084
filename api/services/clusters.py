"""Cluster proposals as a service: propose, keep, re-check a planner's edits, accept.

Proposals are kept as documents beside the network (with the data revision, parameters
and seed that produced them); accepting one writes ``Cluster`` rows through the same
checks as ingest, so the graph is the record of what the secretariat decided.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from api.services.network import NetworkService, Prepared
from api.services.rows import first_problems, write_rows
from graph.errors import Conflict, InvalidInput, NotFound
from graph.model import Kind
from matching.clusters import (
    ClusterInput,
    ClusterParams,
    evaluate_clusters,
    propose_clusters,
)
from matching.clusters.compare import compare_proposals
from matching.clusters.inputs import cluster_input
from matching.clusters.pools import together_slots

COLLECTION = "cluster_proposals"
_T = TypeVar("_T")


def params_to_json(params: ClusterParams) -> dict[str, Any]:
    out = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    out["locked"] = {k: list(v) for k, v in params.locked.items()}
    out["excluded"] = sorted(params.excluded)
    out["themes"] = list(params.themes) if params.themes is not None else None
    out["keep_apart"] = [list(p) for p in params.keep_apart]
    return out


def status_of(doc: Mapping[str, Any]) -> str:
    """``proposed``, ``accepted`` or ``discarded``: a proposal's place in the planner's work."""
    if doc.get("discarded"):
        return "discarded"
    return "accepted" if doc.get("accepted") else "proposed"


def summary_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the list of proposals: enough to choose one to reopen or compare."""
    params = doc.get("params") or {}
    return {
        "id": doc["id"],
        "kind": doc.get("kind"),
        "created": doc.get("created"),
        "revision": doc.get("revision"),
        "n_clusters": len(doc.get("clusters") or ()),
        "objective": doc.get("objective"),
        "status": status_of(doc),
        "method": doc.get("method"),
        "fair": bool(doc.get("fair")),
        "themes": params.get("themes"),
        "seed": params.get("seed", 0),
    }


class ClusterService:
    def __init__(self, network: NetworkService) -> None:
        self.network = network
        self._inputs: tuple[int, ClusterInput] | None = None

    def _input(self) -> tuple[Prepared, ClusterInput]:
        p = self.network.prepared()
        if self._inputs is None or self._inputs[0] != p.revision:
            self._inputs = (
                p.revision,
                cluster_input(p.arrays, p.profiles, accepted=p.snapshot.clusters),
            )
        return p, self._inputs[1]

    def propose(self, params: ClusterParams) -> dict[str, Any]:
        p, inp = self._input()
        proposal = _run(lambda: propose_clusters(inp, params))
        doc = {
            "id": "prop-" + secrets.token_hex(6),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "revision": p.revision,
            "params": params_to_json(params),
            **proposal.to_dict(),
        }
        self.network.store.put_document(COLLECTION, doc["id"], doc)
        doc["status"] = status_of(doc)
        return doc

    def keep_together(
        self, params: ClusterParams, groups: Sequence[Sequence[str]]
    ) -> ClusterParams:
        """``params`` with the planner's "keep these together" groups added as locks."""
        if not groups:
            return params
        _, inp = self._input()
        slots = _run(lambda: together_slots(inp, params, groups))
        return dataclasses.replace(params, locked={**params.locked, **slots})

    def get(self, proposal_id: str) -> dict[str, Any]:
        doc = self.network.store.get_document(COLLECTION, proposal_id)
        if doc is None:
            raise NotFound(f"no cluster proposal with id {proposal_id!r}")
        doc["status"] = status_of(doc)
        return doc

    def list(self) -> list[dict[str, Any]]:
        """Every saved proposal, newest first, as a summary line (``summary_of``)."""
        docs = self.network.store.list_documents(COLLECTION)
        rows = [summary_of(d) for d in docs]
        return sorted(rows, key=lambda r: (r["created"] or "", r["id"]), reverse=True)

    def discard(self, proposal_id: str) -> dict[str, Any]:
        """Mark a proposal discarded: it stays listed (as discarded) and cannot be accepted.

        An accepted proposal is in the graph already: discarding it would say something
        untrue, so it is refused (409). Discarding twice keeps the first date."""
        doc = self.get(proposal_id)
        if doc.get("accepted"):
            raise Conflict(
                f"proposal {proposal_id} was accepted on {doc['accepted']}: "
                "its clusters are in the graph, so it cannot be discarded"
            )
        if not doc.get("discarded"):
            doc["discarded"] = dt.date.today().isoformat()
            doc.pop("status", None)
            self.network.store.put_document(COLLECTION, proposal_id, doc)
        return summary_of(doc)

    def compare(self, proposal_id: str, other_id: str) -> dict[str, Any]:
        """What changed from one saved proposal to another (``compare_proposals``)."""
        a, b = self.get(proposal_id), self.get(other_id)
        _, inp = self._input()
        names = dict(zip(inp.city_ids, inp.names, strict=True))
        return compare_proposals(a, b, names).to_dict()

    def evaluate(
        self,
        proposal_id: str,
        clusters: Sequence[Mapping[str, Any]],
        keep_apart: Sequence[Sequence[str]] = (),
    ) -> dict[str, Any]:
        """Re-check a planner's edited clusters: scores, reasons and every constraint, at once.

        Each edited cluster is described and checked as it stands (nobody is added or
        moved); a rule the edit breaks is reported as a violated constraint, never a 409.
        The lead the planner sends is kept when it can lead; otherwise the cluster's
        ``lead_request`` says why not and who could. A pair kept apart (by the proposal's
        request or ``keep_apart`` here) that the edit puts in one cluster is refused (409):
        the planner asked for both and must choose.
        """
        doc = self.get(proposal_id)
        _, inp = self._input()
        params = _params_from_json(doc["params"])
        if keep_apart:
            pairs: Any = (*params.keep_apart, *(tuple(p) for p in keep_apart))
            params = _run(lambda: dataclasses.replace(params, keep_apart=pairs))
        slots: dict[str, tuple[str, ...]] = {}
        slot_of: dict[str, str] = {}
        leads: dict[str, str] = {}
        known = set(inp.city_ids)
        for c in clusters:
            members = tuple(dict.fromkeys(str(m) for m in c.get("members", ())))
            unknown = [m for m in members if m not in known]
            if unknown:
                raise InvalidInput(f"cluster {c.get('id')!r}: no city with id {unknown[0]!r}")
            if not members:
                continue
            themes = list(c.get("theme_ids") or ())
            label = str(c.get("id") or len(slots))
            slot = f"{themes[0]}#{label}" if params.kind == "thematic" and themes else label
            slots[slot] = members
            slot_of[slot] = label
            if c.get("lead_city"):
                leads[slot] = str(c["lead_city"])
        if not slots:
            raise InvalidInput("there is no cluster with members to check")
        proposal = _run(lambda: evaluate_clusters(inp, params, slots, leads))
        out = proposal.to_dict()
        for cluster in out["clusters"]:
            if cluster.get("locked_slot") in slot_of:
                cluster["id"] = slot_of[cluster["locked_slot"]]
        out["clusters"] = [c for c in out["clusters"] if c.get("locked_slot") in slot_of]
        placed = {m for ms in slots.values() for m in ms}
        out["unassigned"] = [u for u in out["unassigned"] if u.get("city_id") in placed]
        out.update(
            id=doc["id"],
            revision=doc["revision"],
            params=params_to_json(params),
            evaluated=True,
            status=doc["status"],
        )
        return out

    def accept(
        self,
        proposal_id: str,
        clusters: Sequence[Mapping[str, Any]] | None = None,
        period: str | None = None,
    ) -> dict[str, Any]:
        """Write the proposal's clusters (or the planner's edit of them) to the graph.

        An edit is written as it stands even where it breaks a rule: the secretariat has the
        last word. The answer carries the constraint statuses the clusters were accepted
        with, so a broken rule is on record next to the acceptance, never silent.
        """
        doc = self.get(proposal_id)
        if doc.get("discarded"):
            raise Conflict(
                f"proposal {proposal_id} was discarded on {doc['discarded']}: "
                "propose again, or accept another proposal"
            )
        checked = self.evaluate(proposal_id, clusters) if clusters else doc
        chosen = checked["clusters"]
        if not chosen:
            raise InvalidInput("the proposal has no clusters to accept")
        if doc.get("accepted"):
            raise Conflict(f"proposal {proposal_id} was accepted already ({doc['accepted']})")
        names = dict(
            zip(
                self.network.prepared().arrays.theme_ids,
                self.network.prepared().arrays.theme_names,
                strict=True,
            )
        )
        today = dt.date.today().isoformat()
        rows = []
        for k, c in enumerate(chosen, 1):
            themes = [names.get(t, t) for t in c["theme_ids"]]
            lead = c.get("lead_city")
            rows.append(
                {
                    "id": f"{proposal_id}-{k}",
                    "name": (" & ".join(themes) if themes else "Regional cluster") + f" {k}",
                    "kind": doc["kind"],
                    "members": list(c["members"]),
                    "theme_ids": list(c["theme_ids"]),
                    "lead_city": lead if lead in c["members"] else "",
                    "working_languages": list(c.get("working_languages") or ()),
                    "period": period or "",
                    "revision": doc["revision"],
                    "seed": doc["params"].get("seed", 0),
                    "params": json.dumps(doc["params"], sort_keys=True),
                    "accepted_on": today,
                }
            )
        write_rows(
            self.network.store,
            Kind.CLUSTERS,
            rows,
            name="clusters",
            source=proposal_id,
            refusal=lambda errors: "the clusters could not be stored: " + first_problems(errors),
        )
        doc["accepted"] = today
        doc.pop("status", None)
        self.network.store.put_document(COLLECTION, proposal_id, doc)
        snapshot = self.network.snapshot()
        ids = {r["id"] for r in rows}
        accepted = [dataclasses.asdict(c) for c in snapshot.clusters if c.id in ids]
        return {
            "accepted": accepted,
            "revision": snapshot.revision,
            "constraints": checked.get("constraints", []),
        }


def _params_from_json(data: Mapping[str, Any]) -> ClusterParams:
    fields = {f.name for f in dataclasses.fields(ClusterParams)}
    values = {k: v for k, v in data.items() if k in fields}
    values["locked"] = {k: tuple(v) for k, v in (values.get("locked") or {}).items()}
    values["excluded"] = frozenset(values.get("excluded") or ())
    values["keep_apart"] = tuple(tuple(p) for p in values.get("keep_apart") or ())
    if values.get("themes") is not None:
        values["themes"] = tuple(values["themes"])
    return ClusterParams(**values)


def _run(make: Callable[[], _T]) -> _T:
    """``make()``, with a malformed request (a plain ``ValueError``) as an ``InvalidInput``;
    the matcher's own errors keep their status (``ClusterInfeasible``: 409)."""
    try:
        return make()
    except ValueError as e:
        if isinstance(e, (InvalidInput, Conflict)) or hasattr(e, "status"):
            raise
        raise InvalidInput(str(e)) from e
