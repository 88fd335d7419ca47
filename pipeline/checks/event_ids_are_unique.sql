-- An event id is ingested once.
select event_id, count(*) as copies
from events
group by event_id
having count(*) > 1
