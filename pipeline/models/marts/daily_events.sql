-- materialized: incremental by site, date
--
-- Custom events (every name but pageview and engagement) per site and local date.

with

affected_days as (
    select * from int_affected_days
),

day_custom_events as (
    select *
    from events
    semi join affected_days using (site, date)
    where name not in ('pageview', 'engagement')
),

final as (
    select
        site,
        date,
        name,
        count(*) as events,
        count(distinct visitor_id) as visitors
    from day_custom_events
    group by site, date, name
)

select * from final
