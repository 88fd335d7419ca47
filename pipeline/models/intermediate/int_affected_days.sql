-- materialized: table
--
-- The (site, local date) pairs whose daily figures this run rebuilds: every day on which a
-- recomputed visitor has an event, before or after this run. A session that reaches back
-- across midnight is covered, because all of its visitor's days are.

with

recomputed_days as (
    select distinct site, local_time::date as date from int_event_sessions
),

previous_days as (
    select distinct site, date
    from stg_stored_events
    semi join int_affected_visitors using (site, visitor_id)
),

final as (
    select distinct site, date
    from (
        select * from recomputed_days
        union all
        select * from previous_days
    )
)

select * from final
