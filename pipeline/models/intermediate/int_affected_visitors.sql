-- materialized: table
--
-- The visitors whose sessions this run recomputes: everyone with a new event, and, when the
-- run rebuilds (--since DATE, or a changed sites/sessions/funnels config), everyone with
-- events on or after that local date. Sessions never span two visitors, so recomputing these
-- visitors' whole timelines is exact.

with

new_events as (
    select site, visitor_id from int_new_events
),

rebuilt_events as (
    select site, visitor_id
    from stg_stored_events
    where $rebuild_all or date >= $rebuild_from
),

final as (
    select distinct site, visitor_id
    from (
        select * from new_events
        union all
        select * from rebuilt_events
    )
)

select * from final
