-- materialized: view
--
-- The events that earlier runs stored: the pipeline's own history, read as a source (what
-- dbt calls `{{ this }}`). The runner creates the `events` table from footfall/marts.py before
-- any model runs, so on a fresh database this is simply empty. The only model that reads a
-- public table before the marts layer.

select * from main.events
