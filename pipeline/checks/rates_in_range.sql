-- Bounce rates are percentages and views per visit are never negative.
select site, date, bounce_rate, views_per_visit
from daily_stats
where bounce_rate < 0 or bounce_rate > 100 or views_per_visit < 0
