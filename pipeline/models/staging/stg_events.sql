-- materialized: view
--
-- The valid events read this run, each event id once, as the narrow columns the later models
-- work with; `line_id` finds the rest of a line in stg_log_lines (its rowid), so the wide rows
-- are carried only once, into the events mart. When the same id was read more than once (a
-- copied file, a re-read .gz) one copy is kept, chosen by content so the choice does not
-- depend on file names or read order.

with

log_lines as (
    select
        rowid as line_id, event_id, site, visitor_id, occurred_at, name, interactive,
        engaged_ms
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
    select
        rowid as line_id, event_id, site, visitor_id, occurred_at, name, interactive,
        engaged_ms
    from stg_log_lines
    semi join repeated_ids using (event_id)
    where is_valid
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
