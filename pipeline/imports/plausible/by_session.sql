-- A Plausible breakdown table → a footfall breakdown by one session column
-- ({{ dimension }} from {{ source_table }}). Plausible writes an empty
-- string where footfall has NULL (direct, unknown).
select
    $site as site,
    date,
    nullif({{ value }}, '') as {{ dimension }},
    sum(visitors)::bigint as visitors,
    sum(visits)::bigint as visits
from {{ source_table }}
group by all
