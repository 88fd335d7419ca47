-- Plausible's imported_custom_events → daily_event_props: its link_url (outbound links, file
-- downloads) is footfall's `url` prop, its path (404s) the `path` prop.
select $site as site, date, name, 'url' as prop, link_url as value,
       sum(events)::bigint as events, sum(visitors)::bigint as visitors
from imported_custom_events where link_url <> '' group by all
union all
select $site as site, date, name, 'path' as prop, path as value,
       sum(events)::bigint as events, sum(visitors)::bigint as visitors
from imported_custom_events where path <> '' group by all
