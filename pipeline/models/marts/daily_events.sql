-- materialized: incremental by site, date
--
-- Custom events (every name but pageview and engagement) per site and local date. Past the
-- first max_event_names() names of a site's day (by events, ties by name), the rest are
-- counted under '(other)', so hostile traffic with endless unique names cannot grow the mart.

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

ranked_names as (
    select
        site,
        date,
        name,
        row_number() over (partition by site, date order by count(*) desc, name) as name_rank
    from day_custom_events
    group by site, date, name
),

capped_events as (
    select
        day_custom_events.site,
        day_custom_events.date,
        case when ranked_names.name_rank > max_event_names() then '(other)'
            else day_custom_events.name end as name,
        day_custom_events.visitor_id
    from day_custom_events
    join ranked_names using (site, date, name)
),

final as (
    select
        site,
        date,
        name,
        count(*) as events,
        count(distinct visitor_id) as visitors
    from capped_events
    group by site, date, name
)

select * from final
