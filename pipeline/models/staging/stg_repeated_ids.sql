-- materialized: table
--
-- Event ids that more than one valid line of this run carries (a copied file, a re-read
-- .gz). Usually empty; it lets stg_events pay for choosing a copy only where there is a choice.

with

log_lines as (
    select event_id from stg_log_lines where is_valid
),

final as (
    select event_id
    from log_lines
    group by event_id
    having count(*) > 1
)

select * from final
