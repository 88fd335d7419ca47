-- daily_stats.visits equals the number of sessions that started that local day.
with

session_counts as (
    select site, date, count(*) as sessions
    from sessions
    group by site, date
)

select site, date, daily_stats.visits, coalesce(session_counts.sessions, 0) as sessions
from daily_stats
full join session_counts using (site, date)
where coalesce(daily_stats.visits, -1) <> coalesce(session_counts.sessions, 0)
