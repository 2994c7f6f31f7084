"""Warm before ready: a server prepares each revision before it serves it, never while a
request waits, and keeps answering from the last one meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import create_key
from api.services.network import NetworkService, Prepared
from api.settings import Settings
from graph.open import open_store
from ingest.load import ingest_path
from matching.kernel.embeddings import default_encoder
from tests.helpers import tiny, wait_ready, wait_serving, write_csvs


def _renamed(tmp_path: Path, name: str) -> Path:
    data = tiny()
    data["cities"][0]["name"] = name
    return write_csvs(tmp_path / name, data)


def test_a_new_revision_is_prepared_in_the_background_while_the_last_one_serves(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/warm.db")
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        service = NetworkService(store, default_encoder(), background=True)
        first = service.prepared()  # nothing prepared yet: built here
        assert service.ready and first.revision == store.revision()

        # a preparation under way (held here) while another process writes a revision
        with service._build_lock:
            assert ingest_path(_renamed(tmp_path, "Klaksvík Town"), store).written
            answers: list[Prepared] = []
            asking = threading.Thread(target=lambda: answers.append(service.prepared()))
            asking.start()
            asking.join(30)  # a bound against a hang: waiting for the held lock never returns
            assert not asking.is_alive() and answers == [first]  # the last revision answers
            assert service.preparation()["serving_revision"] == first.revision
        service.wait_for_background(60)
        fresh = service.prepared()
        assert fresh.revision == store.revision() > first.revision
        assert {c.name for c in fresh.snapshot.cities} >= {"Klaksvík Town"}
    finally:
        store.close()


def test_a_server_sees_a_revision_written_elsewhere_and_prepares_it_unasked(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/watch.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        key = {"Authorization": f"Bearer {create_key(store, 'analyst')[0]}"}
        with TestClient(create_app(Settings(store=url, revision_poll_s=0.1))) as client:
            before = wait_ready(client)["preparation"]["serving_revision"]
            assert before == store.revision()
            # the CLI (here: the same code, another connection) writes a new revision
            assert ingest_path(_renamed(tmp_path, "Klaksvík Harbour"), store).written
            assert wait_serving(client, store.revision()) and store.revision() > before
            r = client.get("/v1/cities/it-messina/partners?k=4", headers=key)
            assert r.status_code == 200
            names = {p["name"] for p in r.json()["suggestions"]}
            assert "Klaksvík Harbour" in names, names
    finally:
        store.close()


def test_an_api_ingest_answers_at_once_and_prepares_in_the_background(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ingest.db"
    store = open_store(url)
    try:
        admin = {"Authorization": f"Bearer {create_key(store, 'admin')[0]}"}
    finally:
        store.close()
    with TestClient(create_app(Settings(store=url))) as client:
        wait_ready(client)
        r = client.post("/v1/ingest", json=tiny(), headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["written"] and body["preparing"]
        ready = wait_serving(client, body["revision"])
        assert ready["checks"]["network"] == "ok"
        partners = client.get("/v1/cities/it-messina/partners?k=2", headers=admin)
        assert partners.status_code == 200 and len(partners.json()["suggestions"]) == 2
        # a dry run writes nothing and prepares nothing
        dry = client.post("/v1/ingest?dry_run=true", json=tiny(), headers=admin).json()
        assert not dry["written"] and not dry["preparing"]


def test_not_ready_while_the_network_cannot_be_prepared_and_says_why(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/broken.db"
    store = open_store(url)
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
    finally:
        store.close()
    empty_model = tmp_path / "no-model-here"
    empty_model.mkdir()
    settings = Settings(store=url, embedding_model=str(empty_model), revision_poll_s=0.1)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = client.get("/health/ready")
            if "last_error" in r.json()["preparation"]:
                break
            time.sleep(0.05)
        assert r.status_code == 503
        body = r.json()
        assert body["checks"]["store"] == "ok"
        error = body["preparation"]["last_error"]
        assert "no-model-here" in error and error in body["checks"]["network"]
        assert body["preparation"]["serving_revision"] is None


def test_a_burst_of_writers_waits_for_one_preparation_not_one_each(tmp_path: Path) -> None:
    """``catch_up`` (a write's answer): writers queued behind a preparation that covers
    their revision return without preparing again, so a burst cannot hold the server's
    threads in a queue of preparations (or of failing tries while the store is away)."""
    store = open_store(f"sqlite:///{tmp_path}/burst.db")
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        service = NetworkService(store, default_encoder(), background=True)
        first = service.prepared()
        with service._build_lock:  # a preparation under way while five writes land
            assert ingest_path(_renamed(tmp_path, "Burst Town"), store).written
            tries = service._tries
            writers = [threading.Thread(target=service.catch_up) for _ in range(5)]
            for w in writers:
                w.start()
            time.sleep(0.2)
            assert all(w.is_alive() for w in writers)  # each waits to see its write
        for w in writers:
            w.join(60)
        assert not any(w.is_alive() for w in writers)
        assert service._tries == tries + 1  # one preparation served all five
        assert service.prepared().revision == store.revision() > first.revision
    finally:
        store.close()


def test_writers_waiting_through_a_failed_preparation_do_not_each_try_again(
    tmp_path: Path,
) -> None:
    """A preparation that fails (the store went away, a broken model) while writers wait:
    they answer (the watcher tries again) instead of queueing one failing try each."""
    store = open_store(f"sqlite:///{tmp_path}/failing.db")
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        empty_model = tmp_path / "no-model-here"
        empty_model.mkdir()
        service = NetworkService(store, default_encoder(str(empty_model)), background=True)
        with service._build_lock:
            tries = service._tries
            writers = [threading.Thread(target=service.catch_up) for _ in range(5)]
            for w in writers:
                w.start()
            time.sleep(0.2)
            service._build_quietly()  # the try under way fails
            assert "no-model-here" in service.preparation()["last_error"]
        for w in writers:
            w.join(60)
        assert not any(w.is_alive() for w in writers)
        assert service._tries == tries + 1 and not service.ready
    finally:
        store.close()


def test_a_write_waits_for_a_slow_preparation_only_so_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preparation that holds on (a first model load on a busy machine) does not hold a
    writer's answer past ``CATCH_UP_S``: the write is stored, the next preparation serves it."""
    import api.services.network as network

    monkeypatch.setattr(network, "CATCH_UP_S", 0.3)
    store = open_store(f"sqlite:///{tmp_path}/slow.db")
    try:
        assert ingest_path(write_csvs(tmp_path / "ds", tiny()), store).ok
        service = NetworkService(store, default_encoder(), background=True)
        first = service.prepared()
        with service._build_lock:  # the slow preparation
            assert ingest_path(_renamed(tmp_path, "Slow Town"), store).written
            writer = threading.Thread(target=service.catch_up)
            writer.start()
            writer.join(10)  # a bound against a hang: without the time box it never returns
            assert not writer.is_alive()
            assert service.prepared().revision == first.revision  # answered before preparing
        service.refresh()
        assert service.prepared().revision == store.revision() > first.revision
    finally:
        store.close()
