"""The container's start (``scripts/container-start``, the Dockerfile's command), run as a
process on this machine: the sample only when asked and only into an empty store, and a
restart keeps what was edited through the API."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import tiny, write_csvs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _container(env: dict[str, str], log: Path) -> Iterator[str]:
    """One start of the container's command, until the server is ready; stopped after."""
    port = _free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "container-start")],
            cwd=ROOT,
            env={**env, "ICCMATCH_HOST": "127.0.0.1", "ICCMATCH_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"not ready within 180 s: {log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_a_restart_keeps_api_edits_and_the_sample_loads_only_into_an_empty_store(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ICCMATCH_STORE": f"sqlite:///{tmp_path}/deployed.db",
        "ICCMATCH_SAMPLE_DIR": str(write_csvs(tmp_path / "sample", tiny())),
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "container.log"
    # the documented way to the first admin key: the CLI, inside the container
    made = subprocess.run(
        ["iccmatch", "keys", "create", "--role", "admin", "--label", "first"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}

    with _container({**env, "ICCMATCH_LOAD_SAMPLE": "0"}, log) as url:  # not asked: no sample
        assert httpx.get(f"{url}/v1/cities", headers=auth).json()["total"] == 0

    with _container({**env, "ICCMATCH_LOAD_SAMPLE": "1"}, log) as url:  # asked, store empty
        assert httpx.get(f"{url}/v1/cities", headers=auth).json()["total"] == 5
        city = httpx.get(f"{url}/v1/cities/it-messina", headers=auth).json()
        edited = {**city, "name": "Messina (edited)"}
        # the answer waits for the revision to be prepared (the edited name is embedded)
        r = httpx.post(f"{url}/v1/cities", json={"rows": [edited]}, headers=auth, timeout=120)
        assert r.status_code == 200 and r.json()["updated"] == 1, r.text

    with _container({**env, "ICCMATCH_LOAD_SAMPLE": "1"}, log) as url:  # a restart
        city = httpx.get(f"{url}/v1/cities/it-messina", headers=auth).json()
        assert city["name"] == "Messina (edited)"
        assert httpx.get(f"{url}/v1/cities", headers=auth).json()["total"] == 5
    assert "already holds 5 cities" in log.read_text()
