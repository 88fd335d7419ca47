-- materialized: view
--
-- The valid events read this run, each event id once. When the same id was read more than
-- once (a copied file, a re-read .gz) one copy is kept, chosen by content so the choice does
-- not depend on file names or read order.

with

log_lines as (
    select * exclude (file, is_valid)
    from stg_log_lines
    where is_valid
),

repeated_ids as (
    select * from stg_repeated_ids
),

unique_events as (
    select * from log_lines anti join repeated_ids using (event_id)
),

chosen_repeats as (
    select *
    from log_lines
    semi join repeated_ids using (event_id)
    qualify row_number() over (
        partition by event_id
        order by occurred_at, site, visitor_id, name, path, props::varchar
    ) = 1
),

final as (
    select * from unique_events
    union all
    select * from chosen_repeats
)

select * from final
