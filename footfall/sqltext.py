"""SQL text that DuckDB cannot take as a parameter (paths in ATTACH and COPY)."""

from __future__ import annotations

from pathlib import Path


def literal(value: str | Path) -> str:
    """A single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
