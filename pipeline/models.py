"""The SQL models and the runner that materialises them, in layer order.

Each model is one `.sql` file under `pipeline/models/<layer>/`; the file name is the table
name. A mart built from a template (footfall/marts.py, `Mart.template`) has no file of its own:
`marts/_<template>.sql` is rendered with the mart's identifiers instead. Its first line says
how the runner materialises it:

    -- materialized: view                          a temp view, rebuilt every run
    -- materialized: table                         a temp table, rebuilt every run
    -- materialized: work table                    a table in the run's own work database:
                                                   stored compressed and paged out as needed,
                                                   so a large staging table does not crowd
                                                   DuckDB's memory; gone after the run
    -- materialized: table, or a view on a fresh database
                                                   a temp view when nothing is stored yet
                                                   (a full run): there it would be a copy
    -- materialized: table, in batches of the visitors of int_visitor_events
                                                   a temp table built by one query per
                                                   batch of visitors, so its memory holds at
                                                   any size (`visitor_batches`); the file
                                                   filters that source with $visitor_batch
    -- materialized: incremental by site, date     a public table: the runner deletes the rows
                                                   whose key is in the affected set, then
                                                   inserts the model's rows (`by site`: the
                                                   rows of every site with an affected day)
    -- materialized: merge on event_id, updating a, b
                                                   a public table: rows with a new key are
                                                   inserted, existing rows get columns a, b
                                                   (rewritten, only where those changed)

Public tables exist before any model runs: `prepare` creates each one the registry declares,
with the registry's columns, and adds columns a newer registry declares to an older file.
The runner assembles no SQL beyond that DDL, wrapping a file in `create … as` / `insert into
… by name`, a `delete … using` on the key columns named in that header, and for a merge the
join that finds which stored rows changed. Values go in as parameters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb
import jinja2

from footfall import marts
from footfall.config import size_bytes

#: The catalog of the run's work database (see database.open_build).
WORK = "work"

#: The model the read step builds: the only one that reads the log files.
READ = "staging/stg_log_lines"

#: The models before the marts, in run order. Layers never read a later layer.
BEFORE_MARTS: tuple[str, ...] = (
    READ,
    "staging/stg_repeated_ids",
    "staging/stg_events",
    "staging/stg_stored_events",
    "intermediate/int_new_events",
    "intermediate/int_affected_visitors",
    "intermediate/int_visitor_events",
    "intermediate/int_event_sessions",
    "intermediate/int_affected_days",
)

#: The models that work visitor by visitor, in run order: with `pipeline.shards` > 1 each
#: shard job builds them (and the views between them) over its own visitors, and the run
#: takes the union of their tables (pipeline/shards.py). stg_stored_events reads the history
#: and int_affected_days works by day: the run builds those itself.
PER_VISITOR: tuple[str, ...] = tuple(
    m for m in BEFORE_MARTS
    if m not in ("staging/stg_stored_events", "intermediate/int_affected_days"))


def order() -> tuple[str, ...]:
    """Every model in run order: staging, intermediate, then the registry's marts."""
    return (*BEFORE_MARTS, *(m.model for m in marts.MARTS))


#: Where each incremental key's affected set lives.
AFFECTED = {
    ("site", "visitor_id"): "int_affected_visitors",
    ("site", "date"): "int_affected_days",
    # whole-range results (experiments): every row of a site with any affected day
    ("site",): "int_affected_days",
}

_NAMES = r"[a-z_]+(?:, [a-z_]+)*"
_HEADER = re.compile(
    r"^-- materialized: (?P<kind>view|work table|table(?P<lazy>, or a view on a fresh database)?"
    r"(?:, in batches of the visitors of (?P<batched>[a-z_]+))?"
    rf"|incremental by (?P<key>{_NAMES})"
    rf"|merge on (?P<merge_key>[a-z_]+), updating (?P<updates>{_NAMES}))\s*$"
)
_PARAM = re.compile(r"\$([a-z_]+)")
# identifiers only: a template is rendered with names from the registry, never with data
_TEMPLATES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                                keep_trailing_newline=True)


@dataclass(frozen=True)
class Model:
    name: str
    sql: str
    kind: str  # view | table | work | incremental | merge
    key: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()  # merge: the columns an existing row takes from the model
    view_when_fresh: bool = False
    batched: str | None = None  # table: the relation whose visitors it is built in batches of

    @property
    def params(self) -> frozenset[str]:
        return frozenset(_PARAM.findall(self.sql))


def _read(relative: str) -> str:
    return (resources.files("pipeline") / "models" / relative).read_text(encoding="utf-8")


def source(name: str) -> str:
    """The SQL text of a model: its file, or its mart's template rendered."""
    layer, table = name.split("/")
    mart = next((m for m in marts.MARTS if m.table == table), None) if layer == "marts" else None
    if mart is not None and mart.template is not None:
        template = _TEMPLATES.from_string(_read(f"marts/{mart.template}.sql"))
        return template.render(table=mart.table, dimension=mart.dimension)
    return _read(f"{name}.sql")


def load(name: str) -> Model:
    table = name.split("/")[1]
    sql = source(name)
    header = _HEADER.match(sql.splitlines()[0])
    if header is None:
        raise ValueError(f"pipeline/models/{name}.sql must start with '-- materialized: …'")
    kind = "work" if header["kind"] == "work table" else header["kind"].split()[0].rstrip(",")
    if kind == "merge":
        return Model(table, sql.rstrip().rstrip(";"), kind, (header["merge_key"],),
                     tuple(header["updates"].split(", ")))
    key = tuple(header["key"].split(", ")) if header["key"] else ()
    if kind == "incremental" and key not in AFFECTED:
        raise ValueError(f"{name}: no affected set for key {key}")
    return Model(table, sql.rstrip().rstrip(";"), kind, key,
                 view_when_fresh=header["lazy"] is not None, batched=header["batched"])


def digest() -> str:
    """Changes whenever a model, a macro or a mart's columns change, so an upgrade rebuilds
    what it affects."""
    h = hashlib.blake2b(digest_size=16)
    for name in order():
        h.update(source(name).encode())
    h.update(_read("macros.sql").encode())
    for mart in marts.MARTS:
        h.update(repr(mart.columns).encode())
    return h.hexdigest()


def create_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_read("macros.sql"))


def prepare(con: duckdb.DuckDBPyConnection, rebuild: bool = False) -> None:
    """The bookkeeping schema (models/state.sql) and every public table of the registry.

    With `rebuild`, the incremental marts start empty in the registry's current layout (the
    stored `events` are kept: they are the history everything is recomputed from)."""
    create_state(con)
    for mart in marts.MARTS:
        if rebuild and load(mart.model).kind == "incremental":
            con.execute(f"drop table if exists main.{mart.table}")
        con.execute(mart.create_sql("main"))
        stored = {name for (name,) in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = 'main' and table_name = ?", [mart.table]).fetchall()}
        for c in mart.columns:
            if c.name not in stored:
                con.execute(f"alter table main.{mart.table} add column {c.name} {c.type}")


def create_state(con: duckdb.DuckDBPyConnection) -> None:
    """The bookkeeping schema alone (models/state.sql): what a shard job needs."""
    con.execute(_read("state.sql"))


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
    """Build one model. Public tables exist already (`prepare`); on a fresh database they
    are empty, so their rows are simply inserted."""
    values = {k: params[k] for k in model.params - BATCH_PARAMS}
    if model.kind == "view" or (model.kind == "table" and fresh and model.view_when_fresh):
        con.execute(f"create or replace temp view {model.name} as {model.sql}", values)
    elif model.kind == "table" and model.batched is not None:
        _in_batches(con, model, values)
    elif model.kind == "table":
        con.execute(f"create or replace temp table {model.name} as {model.sql}", values)
    elif model.kind == "work":
        con.execute(f"create or replace table {WORK}.{model.name} as {model.sql}", values)
    elif fresh:
        con.execute(f"insert into {model.name} by name {model.sql}", values)
    elif model.kind == "merge":
        _merge(con, model, values)
    else:
        affected = AFFECTED[model.key]
        match = " and ".join(f"{model.name}.{k} = {affected}.{k}" for k in model.key)
        con.execute(f"delete from {model.name} using {affected} where {match}")
        con.execute(f"insert into {model.name} by name {model.sql}", values)


#: The parameters a batched model's file filters its source with; the runner sets them.
BATCH_PARAMS = frozenset({"visitor_batch", "visitor_batches"})

#: How many of a batched model's input rows one query takes per GiB of DuckDB's memory limit.
#: Sessionising 4.8M events in one query peaked at 3.2 GB RSS under a 3GB limit, and 19.9M
#: ran out of memory (docs/benchmarks.md); this keeps a margin of about 2.5×.
ROWS_PER_GIB = 1_000_000


def visitor_batches(rows: int, memory_limit: int) -> int:
    """The number of visitor batches a batched model's `rows` input rows go in."""
    per_batch = max(1, ROWS_PER_GIB * memory_limit // 2**30)
    return max(1, -(-rows // per_batch))


def _memory_limit(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("select current_setting('memory_limit')").fetchone()
    limit = size_bytes(str(row[0])) if row else None
    if limit is None:
        raise RuntimeError(f"DuckDB's memory_limit is not a size: {row}")
    return limit


def _in_batches(con: duckdb.DuckDBPyConnection, model: Model,
                values: Mapping[str, Any]) -> None:
    """One query per batch of visitors, by a hash of the visitor id. A visitor's events all
    fall in one batch, and the model works visitor by visitor, so the union of the batches
    is the table one query would build; only the peak memory is smaller."""
    row = con.execute(f"select count(*) from {model.batched}").fetchone()
    batches = visitor_batches(row[0] if row else 0, _memory_limit(con))
    for batch in range(batches):
        into = (f"create or replace temp table {model.name} as" if batch == 0
                else f"insert into {model.name}")
        con.execute(f"{into} {model.sql}",
                    {**values, "visitor_batch": batch, "visitor_batches": batches})


def _merge(con: duckdb.DuckDBPyConnection, model: Model, values: Mapping[str, Any]) -> None:
    """Insert the rows with a new key; rewrite (delete, insert) the stored rows whose
    `updates` columns changed.

    Not MERGE or UPDATE: DuckDB (2.0.1) updates rows that arrive out of storage order one
    vector per row, which took minutes once a config change recomputed every stored row.
    """
    name, key = model.name, model.key[0]
    changes, rewritten = f"{name}_changes", f"{name}_rewritten"
    con.execute(f"create or replace temp table {changes} as {model.sql}", values)
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
