-- Every event belongs to a session of the same site and visitor.
select events.event_id, events.site, events.visitor_id, events.session_id
from events
left join sessions using (session_id)
where sessions.session_id is null
    or sessions.site <> events.site
    or sessions.visitor_id <> events.visitor_id
