-- materialized: incremental by site, date
--
-- Custom event props per site and local date: one row per event name, prop and value.
-- Values are text: strings as they are, numbers and booleans as JSON writes them. Past the
-- first max_prop_keys() (name, prop) pairs of a site's day, and past the first
-- max_prop_values() values of one pair (by events, ties by text), the rest are counted under
-- '(other)', so hostile traffic with endless unique props cannot grow the mart.

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

ranked_pairs as (
    select
        site,
        date,
        name,
        prop,
        row_number() over (partition by site, date order by count(*) desc, name, prop)
            as pair_rank
    from event_props
    group by site, date, name, prop
),

capped_pairs as (
    select
        event_props.site,
        event_props.date,
        case when pair_rank > max_prop_keys() then '(other)' else event_props.name end
            as name,
        case when pair_rank > max_prop_keys() then '(other)' else event_props.prop end
            as prop,
        case when pair_rank > max_prop_keys() then '(other)' else event_props.value end
            as value,
        event_props.visitor_id
    from event_props
    join ranked_pairs using (site, date, name, prop)
),

ranked_values as (
    select
        site,
        date,
        name,
        prop,
        value,
        row_number() over (
            partition by site, date, name, prop order by count(*) desc, value nulls last
        ) as value_rank
    from capped_pairs
    group by site, date, name, prop, value
),

final as (
    select
        capped_pairs.site,
        capped_pairs.date,
        capped_pairs.name,
        capped_pairs.prop,
        case when value_rank > max_prop_values() then '(other)' else capped_pairs.value end
            as value,
        count(*) as events,
        count(distinct capped_pairs.visitor_id) as visitors
    from capped_pairs
    join ranked_values
        on capped_pairs.site = ranked_values.site
        and capped_pairs.date = ranked_values.date
        and capped_pairs.name = ranked_values.name
        and capped_pairs.prop = ranked_values.prop
        and capped_pairs.value is not distinct from ranked_values.value
    group by all
)

select * from final
