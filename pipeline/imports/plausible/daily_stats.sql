-- Plausible's imported_visitors → daily_stats. visit_duration is the sum of the day's visit
-- durations in seconds, bounces a count of bounced visits (Plausible's CSV export).
select
    $site as site,
    date,
    visitors::bigint as visitors,
    visits::bigint as visits,
    pageviews::bigint as pageviews,
    pageviews / nullif(visits, 0) as views_per_visit,
    100.0 * bounces / nullif(visits, 0) as bounce_rate,
    visit_duration / nullif(visits, 0) as visit_duration_s,
    true as is_imported
from imported_visitors
