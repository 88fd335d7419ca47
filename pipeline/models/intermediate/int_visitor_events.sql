-- materialized: view
--
-- Every event, stored or new, of the visitors this run recomputes: the columns
-- sessionisation needs, and for a new event the stg_log_lines row it came from.

with

affected_visitors as (
    select * from int_affected_visitors
),

stored_events as (
    select
        null::bigint as line_id, event_id, site, visitor_id, occurred_at, name, interactive,
        engaged_ms
    from stg_stored_events
    semi join affected_visitors using (site, visitor_id)
),

new_events as (
    select
        line_id, event_id, site, visitor_id, occurred_at, name, interactive, engaged_ms
    from int_new_events
),

final as (
    select * from stored_events
    union all
    select * from new_events
)

select * from final
