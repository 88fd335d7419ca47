-- materialized: incremental by site, date
--
-- Custom event props per site and local date: one row per event name, prop and value.
-- Values are text: strings as they are, numbers and booleans as JSON writes them.

with

affected_days as (
    select * from int_affected_days
),

day_custom_events as (
    select *
    from events
    semi join affected_days using (site, date)
    where name not in ('pageview', 'engagement') and props is not null
),

event_props as (
    select
        day_custom_events.site,
        day_custom_events.date,
        day_custom_events.name,
        day_custom_events.visitor_id,
        prop.key as prop,
        case when prop.type = 'VARCHAR' then prop.value ->> '$' else prop.value::varchar end
            as value
    from day_custom_events, json_each(day_custom_events.props) as prop
),

final as (
    select
        site,
        date,
        name,
        prop,
        value,
        count(*) as events,
        count(distinct visitor_id) as visitors
    from event_props
    group by site, date, name, prop, value
)

select * from final
