-- materialized: incremental by site, visitor_id
--
-- One row per session (docs/metrics.md), from the events of the visitors this run
-- recomputed. The entry page is the first pageview's path and the exit page the last one's
-- (NULL for a session without pageviews); referrer, source, UTM fields and the browser, OS,
-- device and country come from the session's first event, whose id is the session id.

with

recomputed_events as (
    select *
    from events
    semi join int_affected_visitors using (site, visitor_id)
),

session_figures as (
    select
        session_id,
        any_value(site) as site,
        any_value(visitor_id) as visitor_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        epoch(max(occurred_at) - min(occurred_at)) as duration_s,
        count(*) filter (where name = 'pageview') as pageviews,
        count(*) as events,
        count(*) filter (where is_interactive) as interactive_events,
        arg_min(path, {'at': occurred_at, 'id': event_id}) filter (where name = 'pageview')
            as entry_page,
        arg_max(path, {'at': occurred_at, 'id': event_id}) filter (where name = 'pageview')
            as exit_page
    from recomputed_events
    group by session_id
),

first_events as (
    select
        event_id as session_id, date, referrer, source, utm_source, utm_medium, utm_campaign,
        browser, os, device, country
    from recomputed_events
    semi join session_figures using (session_id)
    where event_id = session_id
),

final as (
    select
        session_figures.session_id,
        session_figures.site,
        session_figures.visitor_id,
        first_events.date,
        session_figures.started_at,
        session_figures.ended_at,
        session_figures.duration_s,
        session_figures.pageviews,
        session_figures.events,
        session_figures.interactive_events,
        session_figures.interactive_events <= 1 as is_bounce,
        session_figures.entry_page,
        session_figures.exit_page,
        first_events.referrer,
        first_events.source,
        first_events.utm_source,
        first_events.utm_medium,
        first_events.utm_campaign,
        first_events.browser,
        first_events.os,
        first_events.device,
        first_events.country
    from session_figures
    join first_events using (session_id)
)

select * from final
