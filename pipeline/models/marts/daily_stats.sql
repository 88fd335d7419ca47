-- materialized: incremental by site, date
--
-- The headline figures per site and local date (docs/metrics.md):
--   visitors          distinct visitor ids among that day's events
--   visits            sessions that started that day
--   pageviews         that day's pageview events
--   views_per_visit   pageviews of that day's sessions / visits      (NULL without visits)
--   bounce_rate       100 × bounced visits / visits                   (NULL without visits)
--   visit_duration_s  mean duration of that day's sessions            (NULL without visits)

with

affected_days as (
    select * from int_affected_days
),

day_events as (
    select * from events semi join affected_days using (site, date)
),

day_sessions as (
    select * from sessions semi join affected_days using (site, date)
),

event_figures as (
    select
        site,
        date,
        count(distinct visitor_id) as visitors,
        count(*) filter (where name = 'pageview') as pageviews
    from day_events
    group by site, date
),

session_figures as (
    select
        site,
        date,
        count(*) as visits,
        sum(pageviews) as session_pageviews,
        count(*) filter (where is_bounce) as bounces,
        -- summed in whole milliseconds, so the mean does not depend on the order of rows
        sum(round(duration_s * 1000)::bigint) / count(*) / 1000 as visit_duration_s
    from day_sessions
    group by site, date
),

final as (
    select
        site,
        date,
        event_figures.visitors,
        coalesce(session_figures.visits, 0) as visits,
        event_figures.pageviews,
        session_figures.session_pageviews / session_figures.visits as views_per_visit,
        100.0 * session_figures.bounces / session_figures.visits as bounce_rate,
        session_figures.visit_duration_s,
        false as is_imported
    from event_figures
    left join session_figures using (site, date)
)

select * from final
