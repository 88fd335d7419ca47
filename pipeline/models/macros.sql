-- Small helpers the models share. The runner creates them as temp macros per run, so they
-- never appear in the published database.

-- A JSON value is a string / a whole number / a boolean, in the log line contract's sense.
create or replace temp macro is_json_text(j) as starts_with(j::varchar, '"');
create or replace temp macro is_json_int(j) as
    json_type(j) in ('BIGINT', 'UBIGINT') and try_cast(j as bigint) is not null;
create or replace temp macro is_json_bool(j) as json_type(j) = 'BOOLEAN';

-- Optional fields may be absent or null.
create or replace temp macro is_optional_text(j) as j is null or is_json_text(j);
create or replace temp macro is_optional_int(j) as j is null or is_json_int(j);
create or replace temp macro is_optional_bool(j) as j is null or is_json_bool(j);

-- props: an object whose values are strings, numbers or booleans (no null, no nesting).
create or replace temp macro is_optional_props(j) as
    j is null
    or (
        json_type(j) = 'OBJECT'
        and coalesce(
            list_bool_and(list_transform(
                map_values(case when json_type(j) = 'OBJECT' then j::map(varchar, json) end),
                lambda value: coalesce(json_type(value), 'NULL')
                    in ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')
            )),
            true
        )
    );

-- The unquoted text of a JSON string.
create or replace temp macro json_text(j) as j ->> '$';

-- RFC 3339 UTC with milliseconds and Z, e.g. 2024-05-01T12:00:00.000Z, as a real instant.
create or replace temp macro parse_log_ts(ts) as
    case
        when regexp_full_match(ts, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z')
            then try_strptime(ts, '%Y-%m-%dT%H:%M:%S.%gZ')
    end;

-- A UTC timestamp as wall-clock time in an IANA time zone.
create or replace temp macro to_local_time(utc, zone) as timezone(zone, timezone('UTC', utc));

-- An event counts as interaction unless it is an engagement event or says interactive: false.
create or replace temp macro is_interactive_event(event_name, interactive) as
    event_name <> 'engagement' and coalesce(interactive, true);

-- Bounds on what attacker-controlled names can grow to, per site and local date: event names
-- past the first max_event_names (by events) are counted under '(other)' in daily_events;
-- (name, prop) pairs past max_prop_keys, and values of one pair past max_prop_values, likewise
-- in daily_event_props. The events table keeps every name; only the daily marts fold.
create or replace temp macro max_event_names() as 1000;
create or replace temp macro max_prop_keys() as 1000;
create or replace temp macro max_prop_values() as 1000;
-- experiment_results: variants of one experiment besides the control; the rest are '(other)'.
create or replace temp macro max_experiment_variants() as 20;

-- The statistics of experiment_results (docs/metrics.md). DuckDB has no erf: this is the
-- Chebyshev fit of Numerical Recipes (erfcc), relative error below 1.2e-7 everywhere, so a
-- tiny p-value keeps its digits. The normal's two-sided tail beyond |z| is erfc(|z|/√2).
create or replace temp macro erfc_approx(x) as (
    with t as (select 1 / (1 + 0.5 * abs(x)) as t)
    select
        case when x >= 0 then v else 2 - v end
    from (
        select t * exp(-abs(x) * abs(x) - 1.26551223 + t * (1.00002368 + t * (0.37409196
            + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398
            + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))) as v
        from t
    )
);

-- ln C(n, k).
create or replace temp macro ln_choose(n, k) as lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);

-- The upper tail of the chi-square distribution with df degrees of freedom beyond x, in
-- closed form for whole df (even: a Poisson sum; odd: the normal tail plus a finite series).
create or replace temp macro chi_square_tail(x, df) as
    case
        when x is null or df is null or df < 1 then null
        when x <= 0 then 1.0
        when df % 2 = 0 then list_sum(list_transform(range(0, df // 2),
            lambda i: exp(-x / 2 + i * ln(x / 2) - lgamma(i + 1))))
        else erfc_approx(sqrt(x / 2)) + coalesce(list_sum(list_transform(range(1, (df - 1) // 2 + 1),
            lambda i: exp(-x / 2 + 0.5 * ln(2 * x / pi()) + (i - 1) * ln(x)
                     - (lgamma(2 * i + 1) - i * ln(2) - lgamma(i + 1))))), 0)
    end;
