-- materialized: incremental by site, visitor_id
--
-- One row per session (docs/metrics.md), from the events of the visitors this run
-- recomputed. The entry page is the first pageview's path and the exit page the last one's
-- (NULL for a session without pageviews); referrer, source, UTM fields and the browser, OS,
-- device and country come from the session's first event, whose id is the session id (one
-- aggregate pass: a filtered any_value picks that event's values without a join).

with

recomputed_events as (
    select *
    from events
    semi join int_affected_visitors using (site, visitor_id)
    -- implied (a recomputed visitor's events are all on affected days), but as constants the
    -- bounds let DuckDB skip stored row groups of other days
    where date between $first_affected_day and $last_affected_day
),

final as (
    select
        session_id,
        any_value(site) as site,
        any_value(visitor_id) as visitor_id,
        any_value(date) filter (where event_id = session_id) as date,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        epoch(max(occurred_at) - min(occurred_at)) as duration_s,
        count(*) filter (where name = 'pageview') as pageviews,
        count(*) as events,
        count(*) filter (where is_interactive) as interactive_events,
        count(*) filter (where is_interactive) <= 1 as is_bounce,
        arg_min(path, {'at': occurred_at, 'id': event_id}) filter (where name = 'pageview')
            as entry_page,
        arg_max(path, {'at': occurred_at, 'id': event_id}) filter (where name = 'pageview')
            as exit_page,
        any_value(referrer) filter (where event_id = session_id) as referrer,
        any_value(source) filter (where event_id = session_id) as source,
        any_value(utm_source) filter (where event_id = session_id) as utm_source,
        any_value(utm_medium) filter (where event_id = session_id) as utm_medium,
        any_value(utm_campaign) filter (where event_id = session_id) as utm_campaign,
        any_value(utm_term) filter (where event_id = session_id) as utm_term,
        any_value(utm_content) filter (where event_id = session_id) as utm_content,
        any_value(browser) filter (where event_id = session_id) as browser,
        any_value(os) filter (where event_id = session_id) as os,
        any_value(device) filter (where event_id = session_id) as device,
        any_value(country) filter (where event_id = session_id) as country
    from recomputed_events
    group by session_id
)

select * from final
