"""The SQL models and the runner that materialises them, in layer order.

Each model is one `.sql` file under `pipeline/models/<layer>/`; the file name is the table
name. Its first line says how the runner materialises it:

    -- materialized: view                          a temp view, rebuilt every run
    -- materialized: table                         a temp table, rebuilt every run
    -- materialized: work table                    a table in the run's own work database:
                                                   stored compressed and paged out as needed,
                                                   so a large staging table does not crowd
                                                   DuckDB's memory; gone after the run
    -- materialized: table, or a view on a fresh database
                                                   a temp view when nothing is stored yet
                                                   (a full run): there it would be a copy
    -- materialized: incremental by site, date     a public table: the runner deletes the rows
                                                   whose key is in the affected set, then
                                                   inserts the model's rows
    -- materialized: merge on event_id, updating a, b
                                                   a public table: rows with a new key are
                                                   inserted, existing rows get columns a, b
                                                   (rewritten, only where those changed)

The runner assembles no SQL beyond wrapping a file in `create … as` / `insert into … by name`,
a `delete … using` on the key columns named in that header, and for a merge the join that
finds which stored rows changed. Values go in as parameters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb

#: The catalog of the run's work database (see database.open_build).
WORK = "work"

#: The run order. Layers never read a later layer; within a layer, this order.
ORDER: tuple[str, ...] = (
    "staging/stg_log_lines",
    "staging/stg_repeated_ids",
    "staging/stg_events",
    "intermediate/int_new_events",
    "intermediate/int_affected_visitors",
    "intermediate/int_visitor_events",
    "intermediate/int_event_sessions",
    "intermediate/int_affected_days",
    "marts/events",
    "marts/sessions",
    "marts/daily_stats",
    "marts/daily_pages",
    "marts/daily_sources",
    "marts/daily_referrers",
    "marts/daily_utm_source",
    "marts/daily_utm_medium",
    "marts/daily_utm_campaign",
    "marts/daily_countries",
    "marts/daily_browsers",
    "marts/daily_operating_systems",
    "marts/daily_devices",
    "marts/daily_events",
    "marts/daily_event_props",
    "marts/daily_hours",
    "marts/funnel_steps",
)

#: The public tables, in the order docs/schema.md lists them.
MARTS: tuple[str, ...] = tuple(m.split("/")[1] for m in ORDER if m.startswith("marts/"))

#: Where each incremental key's affected set lives.
AFFECTED = {
    ("site", "visitor_id"): "int_affected_visitors",
    ("site", "date"): "int_affected_days",
}

_NAMES = r"[a-z_]+(?:, [a-z_]+)*"
_HEADER = re.compile(
    r"^-- materialized: (?P<kind>view|work table|table(?P<lazy>, or a view on a fresh database)?"
    rf"|incremental by (?P<key>{_NAMES})"
    rf"|merge on (?P<merge_key>[a-z_]+), updating (?P<updates>{_NAMES}))\s*$"
)
_PARAM = re.compile(r"\$([a-z_]+)")


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str
    kind: str  # view | table | work | incremental | merge
    key: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()  # merge: the columns an existing row takes from the model
    view_when_fresh: bool = False

    @property
    def params(self) -> frozenset[str]:
        return frozenset(_PARAM.findall(self.sql))


def _read(relative: str) -> str:
    return (resources.files("pipeline") / "models" / relative).read_text(encoding="utf-8")


def load(name: str) -> Model:
    layer, table = name.split("/")
    sql = _read(f"{name}.sql")
    header = _HEADER.match(sql.splitlines()[0])
    if header is None:
        raise ValueError(f"pipeline/models/{name}.sql must start with '-- materialized: …'")
    kind = "work" if header["kind"] == "work table" else header["kind"].split()[0].rstrip(",")
    if kind == "merge":
        return Model(table, layer, sql.rstrip().rstrip(";"), kind, (header["merge_key"],),
                     tuple(header["updates"].split(", ")))
    key = tuple(header["key"].split(", ")) if header["key"] else ()
    if kind == "incremental" and key not in AFFECTED:
        raise ValueError(f"{name}: no affected set for key {key}")
    return Model(table, layer, sql.rstrip().rstrip(";"), kind, key,
                 view_when_fresh=header["lazy"] is not None)


def digest() -> str:
    """Changes whenever a model or macro changes, so an upgrade rebuilds what it affects."""
    h = hashlib.blake2b(digest_size=16)
    for name in (*ORDER, "macros"):
        h.update(_read(f"{name}.sql").encode())
    return h.hexdigest()


def all_models() -> list[Model]:
    return [load(name) for name in ORDER]


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_read("macros.sql"))


def table_exists(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> bool:
    row = con.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ? "
        "and database_name = current_database()",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def materialise(
    con: duckdb.DuckDBPyConnection, model: Model, params: Mapping[str, Any],
    fresh: bool = False,
) -> None:
    """Build one model; public tables are created on first use, then patched."""
    values = {k: params[k] for k in model.params}
    if model.kind == "view" or (model.kind == "table" and fresh and model.view_when_fresh):
        con.execute(f"create or replace temp view {model.name} as {model.sql}", values)
    elif model.kind == "table":
        con.execute(f"create or replace temp table {model.name} as {model.sql}", values)
    elif model.kind == "work":
        con.execute(f"create or replace table {WORK}.{model.name} as {model.sql}", values)
    elif not table_exists(con, model.name):
        con.execute(f"create table {model.name} as {model.sql}", values)
    elif model.kind == "merge":
        _merge(con, model, values)
    else:
        affected = AFFECTED[(model.key[0], model.key[1])]
        match = " and ".join(f"{model.name}.{k} = {affected}.{k}" for k in model.key)
        con.execute(f"delete from {model.name} using {affected} where {match}")
        con.execute(f"insert into {model.name} by name {model.sql}", values)


def _merge(con: duckdb.DuckDBPyConnection, model: Model, values: Mapping[str, Any]) -> None:
    """Insert the rows with a new key; rewrite (delete, insert) the stored rows whose
    `updates` columns changed.

    Not MERGE or UPDATE: DuckDB (2.0.1) updates rows that arrive out of storage order one
    vector per row, which took minutes once a config change recomputed every stored row.
    """
    name, key = model.name, model.key[0]
    changes, rewritten = f"{name}_changes", f"{name}_rewritten"
    con.execute(f"create or replace temp table {changes} as {model.sql}", values)
    # Columns a newer model adds (new optional log fields) join the stored table as NULLs.
    stored_columns = {row[0] for row in con.execute(f"describe {name}").fetchall()}
    for column, kind, *_ in con.execute(f"describe {changes}").fetchall():
        if column not in stored_columns:
            con.execute(f'alter table {name} add column "{column}" {kind}')
    new_values = ", ".join(f"source.{c} as {c}" for c in model.updates)
    differs = " or ".join(f"stored.{c} is distinct from source.{c}" for c in model.updates)
    # one pass over the stored table: the rows it already holds, with their new values
    con.execute(
        f"create or replace temp table {rewritten} as "
        f"select stored.* replace ({new_values}), {differs} as changed "
        f"from {name} as stored join {changes} as source using ({key})"
    )
    con.execute(f"insert into {name} by name select * from {changes} "
                f"anti join {rewritten} using ({key})")
    con.execute(f"delete from {name} using {rewritten} "
                f"where {name}.{key} = {rewritten}.{key} and {rewritten}.changed")
    con.execute(f"insert into {name} by name "
                f"select * exclude (changed) from {rewritten} where changed")
    con.execute(f"drop table {changes}")
    con.execute(f"drop table {rewritten}")
