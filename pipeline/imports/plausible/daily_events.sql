-- Plausible's imported_custom_events → daily_events (one row per name and day; link_url and
-- path become props in daily_event_props).
select
    $site as site,
    date,
    name,
    sum(events)::bigint as events,
    sum(visitors)::bigint as visitors
from imported_custom_events
group by all
