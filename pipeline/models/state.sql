-- The `pipeline` schema: the run's own bookkeeping (docs/schema.md). Not a contract: columns
-- may change between versions. The runner executes this file at the start of every run;
-- tables the config describes (sites, funnels, experiments) are replaced, the rest kept.

create schema if not exists pipeline;

-- Bytes of each log file consumed so far, and the first bytes that identify it.
create table if not exists pipeline.files (
    source varchar primary key, size bigint, consumed bigint, head varchar
);

-- Raw log files a published run compacted into `target` or, without one, expired; deleted
-- after the publish (pipeline/lifecycle.py).
create table if not exists pipeline.retired (
    source varchar primary key, size bigint, target varchar
);

-- Small facts between runs, e.g. the fingerprint of the settings the models last used.
create table if not exists pipeline.state (key varchar primary key, value varchar);

-- One summary per run.
create table if not exists pipeline.runs (finished_at timestamp, summary json);

-- Refused log lines and why: the first of each file (pipeline/quarantine.py, KEEP_LINES).
create table if not exists pipeline.quarantine (
    source varchar, "offset" bigint, reason varchar, line varchar
);

-- How many lines each read of a file refused, kept or not.
create table if not exists pipeline.quarantine_counts (source varchar, start bigint, lines bigint);

-- What each raw day file holds, so a run rewrites only the days whose rows changed.
create table if not exists pipeline.raw_exports (
    site varchar, date date, digest ubigint, size bigint, primary key (site, date)
);

-- The config as small tables the models join, rewritten every run.
create or replace table pipeline.sites (site varchar, timezone varchar);

create or replace table pipeline.funnel_definitions (
    site varchar, funnel varchar, step integer, step_name varchar, path varchar,
    path_like varchar, event_name varchar, prop_count integer
);

create or replace table pipeline.funnel_step_props (
    site varchar, funnel varchar, step integer, prop varchar, value varchar
);

create or replace table pipeline.experiments (
    site varchar, experiment varchar, prop_path varchar, event_name varchar, control varchar,
    goal_path varchar, goal_path_like varchar, goal_event varchar, goal_prop_count integer,
    start_date date, end_date date
);

create or replace table pipeline.experiment_goal_props (
    site varchar, experiment varchar, prop_path varchar, value varchar
);

-- Configured weights; an experiment without any is checked against an even split.
create or replace table pipeline.experiment_weights (
    site varchar, experiment varchar, variant varchar, weight double
);
