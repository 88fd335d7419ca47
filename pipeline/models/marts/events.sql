-- materialized: merge on event_id, updating session_id, date, hour, local_time, is_interactive, time_on_page_s
--
-- Every ingested event, one row per event id, with its local date and session. Public: see
-- docs/schema.md. New events are inserted; the stored events of the visitors this run
-- recomputed get their new session, local time and time on page (their other columns never
-- change, so only the new events carry them here).

with

new_events as (
    select * from int_new_events
),

event_sessions as (
    select * from int_event_sessions
),

final as (
    select
        event_sessions.event_id,
        event_sessions.site,
        new_events.occurred_at,
        event_sessions.local_time::date as date,
        hour(event_sessions.local_time) as hour,
        event_sessions.local_time,
        new_events.name,
        new_events.path,
        event_sessions.visitor_id,
        event_sessions.session_id,
        new_events.hostname,
        new_events.referrer,
        new_events.source,
        new_events.utm_source,
        new_events.utm_medium,
        new_events.utm_campaign,
        new_events.utm_term,
        new_events.utm_content,
        new_events.browser,
        new_events.browser_version,
        new_events.os,
        new_events.os_version,
        new_events.device,
        new_events.country,
        new_events.screen_width,
        new_events.props,
        new_events.interactive,
        new_events.engaged_ms,
        new_events.scroll_pct,
        event_sessions.is_interactive,
        event_sessions.time_on_page_s
    from event_sessions
    left join new_events using (event_id)
)

select * from final
