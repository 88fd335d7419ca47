-- materialized: table
--
-- Every event, stored or new, of the visitors this run recomputes. A table, because the
-- events mart deletes the stored rows before it inserts these.

with

affected_visitors as (
    select * from int_affected_visitors
),

stored_events as (
    select
        event_id, occurred_at, site, name, path, visitor_id, hostname, referrer, source,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version,
        os, os_version, device, country, screen_width, props, interactive, engaged_ms,
        scroll_pct
    from previous_events
    semi join affected_visitors using (site, visitor_id)
),

new_events as (
    select
        event_id, occurred_at, site, name, path, visitor_id, hostname, referrer, source,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version,
        os, os_version, device, country, screen_width, props, interactive, engaged_ms,
        scroll_pct
    from int_new_events
),

final as (
    select * from stored_events
    union all
    select * from new_events
)

select * from final
