-- materialized: incremental by site, date
--
-- Per site, local date and local hour (0-23) with any event: distinct visitors and pageviews.

with

affected_days as (
    select * from int_affected_days
),

day_events as (
    select * from events semi join affected_days using (site, date)
),

final as (
    select
        site,
        date,
        hour,
        count(distinct visitor_id) as visitors,
        count(*) filter (where name = 'pageview') as pageviews
    from day_events
    group by site, date, hour
)

select * from final
