-- materialized: incremental by site, date
--
-- The template of every breakdown of sessions by one of their columns (footfall/marts.py,
-- `by_session`): visits and visitors per site, local date and the session's `{{ dimension }}`
-- (taken from the session's first event; NULL means none or unknown). visits counts the
-- sessions that started that day, visitors the distinct visitor ids among them.

with

affected_days as (
    select * from int_affected_days
),

day_sessions as (
    select * from sessions semi join affected_days using (site, date)
),

final as (
    select
        site,
        date,
        {{ dimension }},
        count(distinct visitor_id) as visitors,
        count(*) as visits
    from day_sessions
    group by site, date, {{ dimension }}
)

select * from final
