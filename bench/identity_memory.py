"""Memory the visitor-id store holds for N distinct visitors, at noon and just before midnight.

    python -m bench.identity_memory [--ids 1000000] [--module path/to/identity.py]

`--module` loads another version of collector/identity.py (e.g. one from git history) so a
change can be compared with what it replaced in the same run. Memory is what tracemalloc
sees allocated by the store after a prune, not RSS.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import tempfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

TIMEOUT_MS = 30 * 60_000


def load(path: str | None) -> ModuleType:
    if path is None:
        from collector import identity

        return identity
    spec = importlib.util.spec_from_file_location("identity_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_bytes(identity: ModuleType, ids: int, iso: str) -> tuple[int, int]:
    """(bytes held, ids held) after `ids` distinct visitors within one minute from `iso`."""
    start = int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)
    now = [start]
    with tempfile.TemporaryDirectory() as tmp:
        store = identity.VisitorIds(identity.SaltStore(Path(tmp)), lambda: now[0], TIMEOUT_MS)
        store.visitor("example.com", "192.0.2.1", "warm-up", start)  # salt made and cached
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(ids):
            now[0] = start + i * 60_000 // ids
            store.visitor("example.com", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                          "Mozilla/5.0", now[0])
        store.prune()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        count = len(store._recent) + len(store._yesterday)
    return held, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--module", help="path of another identity.py to measure")
    args = parser.parse_args()
    identity = load(args.module)
    print(f"{args.ids:,} distinct visitors in one minute, session timeout 30 min")
    for label, iso in (("at noon", "2026-03-10T12:00:00"),
                       ("23:45, last window before midnight", "2026-03-10T23:45:00")):
        held, count = held_bytes(identity, args.ids, iso)
        print(f"  {label:36} {held / 1e6:8.1f} MB held, {count:>9,} ids remembered")


if __name__ == "__main__":
    main()
