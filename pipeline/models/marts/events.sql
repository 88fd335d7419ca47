-- materialized: merge on event_id, updating session_id, date, hour, local_time, is_interactive, time_on_page_s
--
-- Every ingested event, one row per event id, with its local date and session. Public: see
-- docs/schema.md. New events are inserted; the stored events of the visitors this run
-- recomputed get their new session, local time and time on page (their other columns never
-- change, so only the new events carry them here, from the log lines they were read from).

with

new_lines as (
    select rowid as line_id, * exclude (file, is_valid) from stg_log_lines
),

event_sessions as (
    select * from int_event_sessions
),

final as (
    select
        event_sessions.event_id,
        event_sessions.site,
        new_lines.occurred_at,
        event_sessions.local_time::date as date,
        hour(event_sessions.local_time) as hour,
        event_sessions.local_time,
        new_lines.name,
        new_lines.path,
        event_sessions.visitor_id,
        event_sessions.session_id,
        new_lines.hostname,
        new_lines.referrer,
        new_lines.source,
        new_lines.utm_source,
        new_lines.utm_medium,
        new_lines.utm_campaign,
        new_lines.utm_term,
        new_lines.utm_content,
        new_lines.browser,
        new_lines.browser_version,
        new_lines.os,
        new_lines.os_version,
        new_lines.device,
        new_lines.country,
        new_lines.screen_width,
        new_lines.props,
        new_lines.interactive,
        new_lines.engaged_ms,
        new_lines.scroll_pct,
        event_sessions.is_interactive,
        event_sessions.time_on_page_s,
        new_lines.revenue_amount,
        new_lines.revenue_currency
    from event_sessions
    left join new_lines using (line_id)
)

select * from final
