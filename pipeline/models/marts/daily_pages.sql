-- materialized: incremental by site, date
--
-- Pages per site and local date: pageviews and distinct visitors of that day's pageviews,
-- entries and exits of that day's sessions (and the distinct visitors behind them), the mean
-- time on page over the pageviews that have one (engagement time, else the gap to the
-- session's next pageview), and the mean scroll depth over the visits that reported one.

with

affected_days as (
    select * from int_affected_days
),

day_pageviews as (
    select *
    from events
    semi join affected_days using (site, date)
    where name = 'pageview'
),

day_sessions as (
    select * from sessions semi join affected_days using (site, date)
),

day_engagements as (
    select *
    from events
    semi join affected_days using (site, date)
    where name = 'engagement' and scroll_pct is not null
),

views as (
    select
        site,
        date,
        path,
        count(*) as pageviews,
        count(distinct visitor_id) as visitors,
        -- summed in whole milliseconds, so the mean does not depend on the order of rows
        sum(round(time_on_page_s * 1000)::bigint) / count(time_on_page_s) / 1000
            as avg_time_on_page_s,
        count(time_on_page_s) as timed_pageviews
    from day_pageviews
    group by site, date, path
),

-- a visit's scroll depth on a page is the deepest it reported there that day
scrolls as (
    select site, date, path, session_id, max(least(greatest(scroll_pct, 0), 100)) as depth
    from day_engagements
    group by site, date, path, session_id
),

scroll_depths as (
    select
        site,
        date,
        path,
        sum(depth)::double / count(*) as avg_scroll_pct,
        count(*) as scrolled_visits
    from scrolls
    group by site, date, path
),

entries as (
    select
        site,
        date,
        entry_page as path,
        count(*) as entries,
        count(distinct visitor_id) as entry_visitors
    from day_sessions
    where entry_page is not null
    group by site, date, entry_page
),

exits as (
    select
        site,
        date,
        exit_page as path,
        count(*) as exits,
        count(distinct visitor_id) as exit_visitors
    from day_sessions
    where exit_page is not null
    group by site, date, exit_page
),

final as (
    select
        site,
        date,
        path,
        coalesce(views.pageviews, 0) as pageviews,
        coalesce(views.visitors, 0) as visitors,
        coalesce(entries.entries, 0) as entries,
        coalesce(entries.entry_visitors, 0) as entry_visitors,
        coalesce(exits.exits, 0) as exits,
        coalesce(exits.exit_visitors, 0) as exit_visitors,
        views.avg_time_on_page_s,
        coalesce(views.timed_pageviews, 0) as timed_pageviews,
        scroll_depths.avg_scroll_pct,
        coalesce(scroll_depths.scrolled_visits, 0) as scrolled_visits
    from views
    full join entries using (site, date, path)
    full join exits using (site, date, path)
    full join scroll_depths using (site, date, path)
)

select * from final
