#!/usr/bin/env python3
"""Build tracker.js from tracker.src.js, reproducibly.

    python3 collector/static/build.py           # rewrite tracker.js (what `make tracker` runs)
    python3 collector/static/build.py --check   # exit 1 if tracker.js is not a fresh build

The minifier is terser, pinned exactly in package.json and, with all its dependencies, in
package-lock.json next to this file; `npm ci` installs that tree into node_modules/ (ignored
by git) the first time. The options below are part of the build: change them, rebuild, and
commit tracker.js with them. Needs node and npm (v20 is what CI has); nothing else.

Exit codes: 0 ok, 1 tracker.js is stale (--check), 2 the build tool is missing or failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "tracker.src.js"
OUTPUT = HERE / "tracker.js"
LOCK = HERE / "package-lock.json"
TERSER_PKG = HERE / "node_modules" / "terser" / "package.json"

#: terser's minify() options. `toplevel` + `mangle` shorten every name; the source is one
#: IIFE, so nothing leaks into the page except window.footfall and window.trackEvent.
TERSER_OPTIONS: dict[str, object] = {
    "ecma": 2020,
    "toplevel": True,
    "compress": {"passes": 3, "unsafe_arrows": True, "pure_getters": True},
    "mangle": True,
    "format": {"comments": False, "ascii_only": True},
}

_MINIFY_JS = """
const {minify} = require('terser');
let src = '';
process.stdin.on('data', (c) => (src += c));
process.stdin.on('end', async () => {
  const result = await minify(src, JSON.parse(process.argv[1]));
  process.stdout.write(result.code);
});
"""


class BuildError(Exception):
    """The minifier is missing or failed; the message says what to install or fix."""


def pinned_terser_version() -> str:
    lock = json.loads(LOCK.read_text(encoding="utf-8"))
    return str(lock["packages"]["node_modules/terser"]["version"])


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"'{name}' not found: install Node.js 20+ with npm to build tracker.js")
    return path


def ensure_terser() -> None:
    """Install the locked terser into node_modules/ unless that exact version is there."""
    want = pinned_terser_version()
    if TERSER_PKG.exists():
        have = json.loads(TERSER_PKG.read_text(encoding="utf-8")).get("version")
        if have == want:
            return
    done = subprocess.run(
        [_tool("npm"), "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=HERE, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise BuildError(f"npm ci failed in {HERE}:\n{done.stderr.strip()}")


def build() -> bytes:
    """Return the minified tracker, exactly as it should be committed."""
    node = _tool("node")
    ensure_terser()
    done = subprocess.run(
        [node, "-e", _MINIFY_JS, json.dumps(TERSER_OPTIONS, sort_keys=True)],
        cwd=HERE, input=SOURCE.read_bytes(), capture_output=True, check=False,
    )
    if done.returncode != 0 or not done.stdout:
        raise BuildError(f"terser failed:\n{done.stderr.decode(errors='replace').strip()}")
    return done.stdout.strip() + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if tracker.js differs from a fresh build")
    args = parser.parse_args(argv)
    try:
        fresh = build()
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if OUTPUT.read_bytes() != fresh:
            print("tracker.js is stale: run `make tracker` and commit it", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_bytes(fresh)
    print(f"wrote {OUTPUT.name}: {len(fresh)} bytes (terser {pinned_terser_version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
