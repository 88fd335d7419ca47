-- No session ends before it starts: every duration is zero or more.
select session_id, site, date, started_at, ended_at, duration_s
from sessions
where duration_s < 0 or ended_at < started_at
