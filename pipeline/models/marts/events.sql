-- materialized: incremental by site, visitor_id
--
-- Every ingested event, one row per event id, with its local date and session. Public: see
-- docs/schema.md. The runner replaces the rows of the visitors this run recomputed.

with

sessionised_events as (
    select * from int_sessionised_events
),

final as (
    select
        event_id,
        site,
        occurred_at,
        date,
        hour,
        local_time,
        name,
        path,
        visitor_id,
        session_id,
        hostname,
        referrer,
        source,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        browser,
        browser_version,
        os,
        os_version,
        device,
        country,
        screen_width,
        props,
        interactive,
        engaged_ms,
        scroll_pct,
        is_interactive,
        time_on_page_s
    from sessionised_events
)

select * from final
