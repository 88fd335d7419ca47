-- Per site, the sessions' event counts add up to the events table.
with

from_sessions as (
    select site, sum(events) as events from sessions group by site
),

from_events as (
    select site, count(*) as events from events group by site
)

select site, from_sessions.events as session_events, from_events.events as events
from from_sessions
full join from_events using (site)
where coalesce(from_sessions.events, 0) <> coalesce(from_events.events, 0)
