-- materialized: incremental by site, visitor_id
--
-- Every ingested event, one row per event id, with its local date and session. Public: see
-- docs/schema.md. The runner replaces the rows of the visitors this run recomputed.

with

visitor_events as (
    select * from int_visitor_events
),

event_sessions as (
    select * from int_event_sessions
),

final as (
    select
        visitor_events.event_id,
        visitor_events.site,
        visitor_events.occurred_at,
        event_sessions.local_time::date as date,
        hour(event_sessions.local_time) as hour,
        event_sessions.local_time,
        visitor_events.name,
        visitor_events.path,
        visitor_events.visitor_id,
        event_sessions.session_id,
        visitor_events.hostname,
        visitor_events.referrer,
        visitor_events.source,
        visitor_events.utm_source,
        visitor_events.utm_medium,
        visitor_events.utm_campaign,
        visitor_events.utm_term,
        visitor_events.utm_content,
        visitor_events.browser,
        visitor_events.browser_version,
        visitor_events.os,
        visitor_events.os_version,
        visitor_events.device,
        visitor_events.country,
        visitor_events.screen_width,
        visitor_events.props,
        visitor_events.interactive,
        visitor_events.engaged_ms,
        visitor_events.scroll_pct,
        event_sessions.is_interactive,
        event_sessions.time_on_page_s
    from visitor_events
    join event_sessions using (event_id)
)

select * from final
