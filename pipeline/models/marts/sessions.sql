-- materialized: incremental by site, visitor_id
--
-- One row per session (docs/metrics.md). The entry page is the first pageview's path and the
-- exit page the last one's (NULL for a session without pageviews); referrer, source, UTM
-- fields and the browser, OS, device and country come from the session's first event.

with

sessionised_events as (
    select * from int_sessionised_events
),

final as (
    select
        session_id,
        any_value(site) as site,
        any_value(visitor_id) as visitor_id,
        arg_min(date, visitor_seq) as date,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        epoch(max(occurred_at) - min(occurred_at)) as duration_s,
        count(*) filter (where name = 'pageview') as pageviews,
        count(*) as events,
        count(*) filter (where is_interactive) as interactive_events,
        count(*) filter (where is_interactive) <= 1 as is_bounce,
        arg_min(path, visitor_seq) filter (where name = 'pageview') as entry_page,
        arg_max(path, visitor_seq) filter (where name = 'pageview') as exit_page,
        arg_min_null(referrer, visitor_seq) as referrer,
        arg_min_null(source, visitor_seq) as source,
        arg_min_null(utm_source, visitor_seq) as utm_source,
        arg_min_null(utm_medium, visitor_seq) as utm_medium,
        arg_min_null(utm_campaign, visitor_seq) as utm_campaign,
        arg_min_null(browser, visitor_seq) as browser,
        arg_min_null(os, visitor_seq) as os,
        arg_min_null(device, visitor_seq) as device,
        arg_min_null(country, visitor_seq) as country
    from sessionised_events
    group by session_id
)

select * from final
