-- materialized: table, or a view on a fresh database
--
-- This run's events whose id the database does not hold yet: an event id is ingested once,
-- however often its line is read.

with

read_events as (
    select * from stg_events
),

stored_events as (
    select event_id from stg_stored_events
),

final as (
    select *
    from read_events
    anti join stored_events using (event_id)
)

select * from final
