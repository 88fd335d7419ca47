"""Data tests: SQL files in pipeline/checks/ that return no rows when all is well.

`footfall check` runs them against the published database (read-only, so it never blocks a
run or a reader); the test suite runs them after every pipeline test.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from footfall.config import Config
from footfall.errors import PipelineError


@dataclass(frozen=True)
class Failure:
    check: str
    rows: int
    sample: list[tuple[object, ...]]
    columns: list[str]

    def describe(self) -> str:
        head = ", ".join(self.columns)
        lines = [f"{self.check}: {self.rows} offending rows ({head})"]
        lines += [f"    {row}" for row in self.sample]
        return "\n".join(lines)


def names() -> list[str]:
    folder = resources.files("pipeline") / "checks"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".sql"))


def sql(name: str) -> str:
    return (resources.files("pipeline") / "checks" / f"{name}.sql").read_text(encoding="utf-8")


def run_checks(con: duckdb.DuckDBPyConnection, sample: int = 5) -> list[Failure]:
    failures = []
    for name in names():
        rel = con.sql(sql(name))
        rows = rel.fetchall()
        if rows:
            failures.append(Failure(name, len(rows), rows[:sample], list(rel.columns)))
    return failures


def check(cfg: Config, database: Path | None = None) -> list[Failure]:
    """Run every data test against the published database; [] when all pass."""
    path = database or cfg.database
    if not path.exists():
        raise PipelineError(f"no database at {path} yet; run `footfall run` first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        return run_checks(con)
    finally:
        con.close()
