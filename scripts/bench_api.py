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

    .venv/bin/python -m scripts.bench_api [--seconds 30] [--sizes 159 10000] [--out FILE]

``--soak [--minutes 10]`` runs a soak instead: mixed reads and writes against the served
sample network for that long (wrk with a Lua mix: partner suggestions, city lists and
pages, network stats; a coordinator's interest in a partner and small theme writes over a
fixed set of rows, so the data stays the same size), sampling the server process's RSS
every ``--sample-s`` seconds. It reports requests, errors (non-2xx and socket errors; the
target is 0) and RSS after the warm-up against RSS at the end (the target: within 10%),
and exits 1 when a target is missed.

    .venv/bin/python -m scripts.bench_api --soak [--minutes 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from api.keys import create_key
from graph.model import Kind
from graph.sqlite_store import SqliteStore
from ingest.load import ingest_path
from matching.kernel.embeddings import content_hash, default_encoder
from matching.kernel.texts import city_profiles, expert_texts

ROOT = Path(__file__).resolve().parents[1]

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
        from scripts import netgen

        netgen.write_csv(netgen.generate(size, 0), folder / f"net{size}")
        report = ingest_path(folder / f"net{size}", store)
        assert report.ok, report.errors[:3]
        snap = store.snapshot()
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(snap.cities), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        name = default_encoder().name
        store.cache_vectors(
            name,
            {
                content_hash(t): v.tobytes()
                for t, v in zip(city_profiles(snap), vectors, strict=True)
            },
        )
        # the experts' too: a server prepares expert vectors with the city profiles
        texts = expert_texts(snap)
        if texts:
            ev = rng.standard_normal((len(texts), 384)).astype(np.float32)
            ev /= np.linalg.norm(ev, axis=1, keepdims=True)
            store.cache_vectors(
                name, {content_hash(t): v.tobytes() for t, v in zip(texts, ev, strict=True)}
            )
    ids = sorted(store.ids(Kind.CITIES))
    key, _ = create_key(store, "analyst")
    store.close()
    return url, ids, key


def wrk(
    url: str, path: str, ids: list[str], key: str, seconds: int, connections: int
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA % (", ".join(json.dumps(i) for i in ids[:20000]), key, path))
        script = fh.name
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    result["requests_per_s"] = round(result["requests"] / result["seconds"], 1)
    return result


def serve(store_url: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ICCMATCH_STORE": store_url}
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "iccmatch"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


# --- soak ---------------------------------------------------------------------------------

SOAK_LUA = """
local ids = {%(ids)s}
local key = "%(key)s"
local writers = {%(writers)s}
local mix = {%(mix)s}
local n = 0
local json_headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
local headers = {["Authorization"] = "Bearer " .. key}
statuses = {}

request = function()
  n = n + 1
  local r = math.random(100)
  local id = ids[math.random(#ids)]
  if r <= mix[1] then
    return wrk.format("GET", "/v1/cities/" .. id .. "/partners?k=10", headers)
  elseif r <= mix[2] then
    return wrk.format("GET", "/v1/cities?limit=50", headers)
  elseif r <= mix[3] then
    return wrk.format("GET", "/v1/cities/" .. id, headers)
  elseif r <= mix[4] then
    return wrk.format("GET", "/v1/network/stats", headers)
  elseif r <= mix[5] then
    local w = math.random(#writers)
    local status = (n %% 2 == 0) and "interested" or "not_for_us"
    local body = '{"partner_id": "' .. writers[w][2] .. '", "status": "' .. status ..
      '", "note": "soak ' .. n .. '"}'
    return wrk.format("POST", "/v1/cities/" .. writers[w][1] .. "/interests", json_headers, body)
  else
    local body = '{"rows": [{"id": "soak-' .. math.random(0, 9) .. '", "name": "Soak theme ' .. n .. '"}]}'
    return wrk.format("POST", "/v1/themes", json_headers, body)
  end
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
"""
SOAK_DONE = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local counts = {}
  for _, t in ipairs(threads) do
    for status, k in pairs(t:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, k)
    end
  end
  io.write(string.format('RESULT {"requests": %d, "seconds": %.3f, "socket_errors": %d, "non_2xx": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "statuses": [{%s}]}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, table.concat(counts, "}, {")))
end
"""
# cumulative percentages: partners, city list, one city, stats, interests, (the rest) themes
SOAK_MIX = {
    "partners": 45,
    "cities_list": 20,
    "city": 10,
    "network_stats": 15,
    "interests": 7,
    "themes": 3,
}


def build_soak_store(folder: Path) -> tuple[str, list[str], str]:
    """The sample network with an admin key (the writes need it)."""
    url = f"sqlite:///{folder / 'soak.db'}"
    store = SqliteStore(url)
    assert ingest_path(ROOT / "data" / "sample", store).ok
    ids = sorted(store.ids(Kind.CITIES))
    key, _ = create_key(store, "admin")
    store.close()
    return url, ids, key


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


def wrk_segment(base: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    seconds = int(args.minutes * 60)
    warmup_s = args.warmup_s if args.warmup_s is not None else min(120, max(10, seconds // 10))
    url, ids, key = build_soak_store(tmp)
    # a fixed set of (city, partner) pairs: interests update rows, never add without bound
    writers = [(ids[i], ids[(i + 1) % len(ids)]) for i in range(0, min(40, len(ids)), 2)]
    edges, total = [], 0
    for name in ("partners", "cities_list", "city", "network_stats", "interests"):
        total += SOAK_MIX[name]
        edges.append(str(total))
    lua = SOAK_LUA % {
        "ids": ", ".join(json.dumps(i) for i in ids),
        "key": key,
        "writers": ", ".join(f"{{{json.dumps(a)}, {json.dumps(b)}}}" for a, b in writers),
        "mix": ", ".join(edges),
    }
    lua += SOAK_DONE
    script = tmp / "soak.lua"
    script.write_text(lua, encoding="utf-8")
    port = free_port()
    proc = serve(url, port)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    try:
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        for path in (f"/v1/cities/{ids[0]}/partners", "/v1/network/stats"):  # embeds the profiles
            urllib.request.urlopen(
                urllib.request.Request(base + path, headers=headers), timeout=600
            ).read()
        first = SqliteStore(url)
        revision_before = first.revision()
        first.close()
        started = time.monotonic()

        def sample() -> None:
            while not stop.is_set():
                samples.append((round(time.monotonic() - started, 1), round(rss_mb(proc.pid), 1)))
                stop.wait(args.sample_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # one wrk run per minute: the figures per minute show a slow drift, not just a total
        segments = []
        left = seconds
        while left > 0:
            length = min(60, left)
            segments.append(wrk_segment(base, script, length, args.connections))
            left -= length
        stop.set()
        sampler.join()
        samples.append((round(time.monotonic() - started, 1), round(rss_mb(proc.pid), 1)))
        alive = proc.poll() is None
        check = SqliteStore(url)
        revision_after = check.revision()
        snap = check.snapshot()
        check.close()
        db = Path(url.removeprefix("sqlite:///"))
        files_mb = {
            f.name: round(f.stat().st_size / 2**20, 2)
            for f in (db, db.with_name(db.name + "-wal"))
            if f.exists()
        }
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)
    statuses: dict[str, int] = {}
    for segment in segments:
        for per_thread in segment.pop("statuses"):
            for status, k in per_thread.items():
                statuses[status] = statuses.get(status, 0) + k
    requests = sum(x["requests"] for x in segments)
    socket_errors = sum(x["socket_errors"] for x in segments)
    non_2xx = sum(x["non_2xx"] for x in segments)
    per_minute = [
        {
            "requests_per_s": round(x["requests"] / x["seconds"], 1),
            "p50_ms": x["p50_ms"],
            "p95_ms": x["p95_ms"],
            "errors": x["socket_errors"] + x["non_2xx"],
        }
        for x in segments
    ]
    after_warmup = [mb for t, mb in samples if warmup_s <= t < warmup_s + 60] or [samples[0][1]]
    at_end = [mb for t, mb in samples if t >= samples[-1][0] - 60]
    rss_after, rss_end = statistics.median(after_warmup), statistics.median(at_end)
    growth = (rss_end - rss_after) / rss_after * 100
    errors = socket_errors + non_2xx
    return {
        "mode": "soak",
        "minutes": args.minutes,
        "network": f"data/sample ({len(ids)} cities), SQLite",
        "mix_percent": SOAK_MIX,
        "requests": requests,
        "requests_per_s": round(requests / sum(x["seconds"] for x in segments), 1),
        "errors": errors,
        "socket_errors": socket_errors,
        "non_2xx": non_2xx,
        "statuses": statuses,
        "latency_ms": {
            "p50_median_of_minutes": round(statistics.median(x["p50_ms"] for x in segments), 3),
            "p95_worst_minute": max(x["p95_ms"] for x in segments),
            "p99_worst_minute": max(x["p99_ms"] for x in segments),
            "max": max(x["max_ms"] for x in segments),
        },
        "per_minute": per_minute,
        "store_files_mb_at_end": files_mb,
        "writes_applied": revision_after - revision_before,
        "rows_after": {
            "partner_interests": len(snap.partner_interests),
            "themes": len(snap.themes),
        },
        "server_alive_at_end": alive,
        "rss_mb": {
            "warmup_s": warmup_s,
            "after_warmup": rss_after,
            "end": rss_end,
            "growth_percent": round(growth, 2),
            "min": min(mb for _, mb in samples),
            "max": max(mb for _, mb in samples),
            "samples": samples,
        },
        "targets": {"errors": 0, "rss_growth_percent_within": 10},
        "ok": errors == 0 and abs(growth) <= 10 and alive,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[159, 10000])
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (iccmatch serve --workers)"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--soak", action="store_true", help="mixed read/write soak on the sample")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--warmup-s", type=float, help="seconds before the RSS baseline")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    if args.soak:
        with tempfile.TemporaryDirectory() as tmp:
            doc = soak(args, Path(tmp))
        doc["machine"] = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        }
        doc["server"] = f"uvicorn, 1 worker, uvloop + httptools; wrk -t2 -c{args.connections}"
        text = json.dumps(doc, indent=2)
        print(text)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
        sys.exit(0 if doc["ok"] else 1)
    results = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            url, ids, key = build_store(size, Path(tmp))
            port = free_port()
            proc = serve(url, port, args.workers)
            try:
                base = f"http://127.0.0.1:{port}"
                # warm up: the first partner request builds the arrays (and would embed);
                # with several workers each builds its own, so a short concurrent run
                # follows. It asks k=9, so no list measured below (k=10) is kept from it.
                req = urllib.request.Request(
                    f"{base}/v1/cities/{ids[0]}/partners?k=9",
                    headers={"Authorization": f"Bearer {key}"},
                )
                urllib.request.urlopen(req, timeout=600).read()
                wrk(base, "/v1/cities/{id}/partners?k=9", ids, key, 3, args.connections)
                health = wrk(base, "/health/live", ids, key, args.seconds, args.connections)
                partners = wrk(
                    base, "/v1/cities/{id}/partners?k=10", ids, key, args.seconds, args.connections
                )
            finally:
                proc.terminate()
                proc.wait(30)
            results.append(
                {
                    "cities": len(ids),
                    "health_live": health,
                    "partners": partners,
                    "partners_vs_health": round(
                        partners["requests_per_s"] / health["requests_per_s"], 3
                    ),
                }
            )
    doc = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "server": f"uvicorn, {args.workers} worker(s), uvloop + httptools; wrk -t2 -c{args.connections}",
        "load_average_before_after": [load_before, os.getloadavg()],
        "results": results,
        "targets": {"errors": 0, "partners_vs_health_at_150": ">= 0.5", "p95_ms_at_10000": "< 100"},
    }
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
