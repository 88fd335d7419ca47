-- materialized: incremental by site, date
--
-- Revenue goals per site, local date, event name and currency: the events that carried a
-- valid revenue (docs/beacon.md). Amounts in different currencies are never added together:
-- currency is part of the key. conversions counts the visits (sessions) with such an event,
-- so average_revenue is the revenue per converting visit.

with

affected_days as (
    select * from int_affected_days
),

day_revenue_events as (
    select *
    from events
    semi join affected_days using (site, date)
    where revenue_amount is not null and revenue_currency is not null
),

final as (
    select
        site,
        date,
        revenue_currency as currency,
        name,
        sum(revenue_amount) as revenue,
        count(distinct session_id) as conversions,
        count(distinct visitor_id) as visitors,
        (sum(revenue_amount) / count(distinct session_id))::decimal(38, 6) as average_revenue
    from day_revenue_events
    group by site, date, revenue_currency, name
)

select * from final
