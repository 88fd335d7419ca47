-- materialized: incremental by site, date
--
-- Pages per site and local date: pageviews and distinct visitors of that day's pageviews,
-- entries and exits of that day's sessions, and the mean time on page over the pageviews
-- that have one (engagement time, else the gap to the session's next pageview).

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

entries as (
    select site, date, entry_page as path, count(*) as entries
    from day_sessions
    where entry_page is not null
    group by site, date, entry_page
),

exits as (
    select site, date, exit_page as path, count(*) as exits
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
        coalesce(exits.exits, 0) as exits,
        views.avg_time_on_page_s,
        coalesce(views.timed_pageviews, 0) as timed_pageviews
    from views
    full join entries using (site, date, path)
    full join exits using (site, date, path)
)

select * from final
