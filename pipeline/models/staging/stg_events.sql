-- materialized: table
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

final as (
    select *
    from log_lines
    qualify row_number() over (
        partition by event_id
        order by occurred_at, site, visitor_id, name, path, props::varchar
    ) = 1
)

select * from final
