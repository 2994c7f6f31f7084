#!/usr/bin/env python3
"""API load: partner suggestions for random cities under 50 concurrent connections. JSON out.

For each network (the 159-city sample and a generated 10,000-city one), this starts
``iccmatch serve`` (uvicorn with uvloop and httptools, one worker) on loopback, then
drives it from a second process with ``wrk`` (a C load generator; a Python client would
measure itself) for ``--seconds`` on ``/health/live`` (the framework's ceiling) and on
``/v1/cities/{random}/partners``. Reports requests/s, p50/p95/p99 latency and errors.

The generated network's profile vectors are random unit vectors put into the store's
embedding cache, so the server never loads the model: embedding 10,000 texts on this CPU
is a separate cost (see docs/performance.md), not what this measures.

    .venv/bin/python scripts/bench_api.py [--seconds 30] [--sizes 159 10000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from api.keys import create_key  # noqa: E402
from graph.model import Kind  # noqa: E402
from graph.sqlite_store import SqliteStore  # noqa: E402
from ingest.load import ingest_path  # noqa: E402
from matching.embeddings import content_hash, default_encoder  # noqa: E402
from matching.texts import city_profiles  # noqa: E402

LUA = """
local ids = {%s}
local key = "%s"
local path = "%s"
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", string.gsub(path, "{id}", id), {["Authorization"] = "Bearer " .. key})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "seconds": %%.3f, "socket_errors": %%d, "non_2xx": %%d, "p50_ms": %%.3f, "p95_ms": %%.3f, "p99_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_store(size: int, folder: Path) -> tuple[str, list[str], str]:
    url = f"sqlite:///{folder / f'net{size}.db'}"
    store = SqliteStore(url)
    if size <= 200:
        assert ingest_path(ROOT / "data" / "sample", store).ok
    else:
        import netgen

        netgen.write_csv(netgen.generate(size, 0), folder / f"net{size}")
        report = ingest_path(folder / f"net{size}", store)
        assert report.ok, report.errors[:3]
        snap = store.snapshot()
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(snap.cities), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        name = default_encoder().name
        store.cache_vectors(name, {content_hash(t): v.tobytes() for t, v in zip(city_profiles(snap), vectors, strict=True)})
    ids = sorted(store.ids(Kind.CITIES))
    key, _ = create_key(store, "analyst")
    store.close()
    return url, ids, key


def wrk(url: str, path: str, ids: list[str], key: str, seconds: int, connections: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA % (", ".join(json.dumps(i) for i in ids[:20000]), key, path))
        script = fh.name
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["requests_per_s"] = round(result["requests"] / result["seconds"], 1)
    return result


def serve(store_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ICCMATCH_STORE": store_url}
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "iccmatch"), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[159, 10000])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            url, ids, key = build_store(size, Path(tmp))
            port = free_port()
            proc = serve(url, port)
            try:
                base = f"http://127.0.0.1:{port}"
                # warm up: the first partner request builds the arrays (and would embed)
                req = urllib.request.Request(f"{base}/v1/cities/{ids[0]}/partners", headers={"Authorization": f"Bearer {key}"})
                urllib.request.urlopen(req, timeout=600).read()
                health = wrk(base, "/health/live", ids, key, args.seconds, args.connections)
                partners = wrk(base, "/v1/cities/{id}/partners?k=10", ids, key, args.seconds, args.connections)
            finally:
                proc.terminate()
                proc.wait(30)
            results.append({
                "cities": len(ids),
                "health_live": health,
                "partners": partners,
                "partners_vs_health": round(partners["requests_per_s"] / health["requests_per_s"], 3),
            })
    doc = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": f"uvicorn, 1 worker, uvloop + httptools; wrk -t2 -c{args.connections}",
        "results": results,
        "targets": {"errors": 0, "partners_vs_health_at_150": ">= 0.5", "p95_ms_at_10000": "< 100"},
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
