"""Copy the web pages' browser libraries from npm into ``api/web/static/vendor``.

The pages and ``/docs`` load nothing from another address, and a plain ``pip install .``
must give working pages, so the few third-party files they use are vendored: committed
under ``api/web/static/vendor`` with each package's licence beside them, and shipped in
the package like our own static files. ``api/web/package.json`` (with its lock file)
records which versions; this script refreshes the copies after a version change::

    npm ci --prefix api/web --ignore-scripts
    .venv/bin/python -m scripts.vendor_web          # copy
    .venv/bin/python -m scripts.vendor_web --check  # are the copies what npm installed?
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "api" / "web"
NODE_MODULES = WEB / "node_modules"
VENDOR_DIR = WEB / "static" / "vendor"

FILES: dict[str, str] = {
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "d3-array.min.js": "d3-array/dist/d3-array.min.js",
    "d3-geo.min.js": "d3-geo/dist/d3-geo.min.js",
    "topojson-client.min.js": "topojson-client/dist/topojson-client.min.js",
    "countries-110m.json": "world-atlas/countries-110m.json",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}
"""Served name -> path under node_modules."""


BUNDLED: dict[str, tuple[str, ...]] = {"d3-array": ("internmap",)}
"""Packages whose code a vendored file carries inside it (their licence comes along)."""


def _packages() -> list[str]:
    direct = {rel.split("/")[0] for rel in FILES.values()}
    return sorted(direct | {b for p in direct for b in BUNDLED.get(p, ())})


def _licence(package: str) -> Path:
    for name in ("LICENSE", "LICENSE.md", "LICENSE.txt", "license"):
        path = NODE_MODULES / package / name
        if path.is_file():
            return path
    raise SystemExit(f"{package} has no licence file in {NODE_MODULES / package}")


def _version(package: str) -> str:
    meta = json.loads((NODE_MODULES / package / "package.json").read_text(encoding="utf-8"))
    return str(meta["version"])


def copy() -> None:
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    for name, rel in FILES.items():
        shutil.copyfile(NODE_MODULES / rel, VENDOR_DIR / name)
    licences = VENDOR_DIR / "LICENSES"
    licences.mkdir(exist_ok=True)
    lines = ["# Vendored browser libraries (copied by scripts/vendor_web.py from npm)", ""]
    for package in _packages():
        shutil.copyfile(_licence(package), licences / f"{package}.txt")
        notice = ""
        if (NODE_MODULES / package / "NOTICE").is_file():  # Apache-2.0 asks for it too
            shutil.copyfile(NODE_MODULES / package / "NOTICE", licences / f"{package}-NOTICE.txt")
            notice = f", notice: LICENSES/{package}-NOTICE.txt"
        served = ", ".join(n for n, r in FILES.items() if r.startswith(package + "/"))
        inside = [p for p, bs in BUNDLED.items() if package in bs]
        what = served or f"inside {', '.join(inside)}"
        lines.append(
            f"- {package} {_version(package)}: {what} (licence: LICENSES/{package}.txt{notice})"
        )
    (VENDOR_DIR / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def check() -> list[str]:
    """Vendored files that differ from (or are missing in) npm's installed copies."""
    return [
        name
        for name, rel in FILES.items()
        if not (VENDOR_DIR / name).is_file()
        or (VENDOR_DIR / name).read_bytes() != (NODE_MODULES / rel).read_bytes()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, copy nothing")
    args = parser.parse_args()
    if not NODE_MODULES.is_dir():
        raise SystemExit("run `npm ci --prefix api/web --ignore-scripts` first")
    if args.check:
        stale = check()
        print("vendored files match npm" if not stale else f"stale: {', '.join(stale)}")
        sys.exit(1 if stale else 0)
    copy()
    print(f"copied {len(FILES)} files and {len(_packages())} licences into {VENDOR_DIR}")


if __name__ == "__main__":
    main()
