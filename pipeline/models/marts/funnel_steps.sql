-- materialized: incremental by site, date
--
-- Funnels from config (pipeline.funnel_definitions, one row per step). Per session, in time
-- order: a session reaches step 1 at its first event matching step 1, and step k at its first
-- event after step k-1's that matches step k; so it reaches step k exactly when it has events
-- matching steps 1..k in time order. A `path` step matches pageviews by exact path or a `*`
-- glob; an `event` step matches custom events by name and, with props, equal values.
-- visits counts the sessions of that local date (the session's date) that reached the step;
-- median_seconds_from_previous is the median time from the previous step (NULL for step 1).

with recursive

affected_days as (
    select * from int_affected_days
),

defined_steps as (
    select * from pipeline.funnel_definitions
),

defined_step_props as (
    select * from pipeline.funnel_step_props
),

funnels as (
    select distinct site, funnel from defined_steps
),

day_sessions as (
    select site, date, session_id
    from sessions
    semi join affected_days using (site, date)
    semi join funnels using (site)
),

-- the events that can match a step; `seq` orders them as sessions are ordered
session_events as (
    select
        site,
        session_id,
        event_id,
        occurred_at,
        name,
        path,
        props,
        {'at': occurred_at, 'id': event_id} as seq
    from events
    semi join day_sessions using (session_id)
    where name = 'pageview'
        or name in (select event_name from defined_steps where event_name is not null)
),

event_props as (
    select
        session_events.session_id,
        session_events.seq,
        prop.key as prop,
        case when prop.type = 'VARCHAR' then prop.value ->> '$' else prop.value::varchar end
            as value
    from session_events, json_each(session_events.props) as prop
    where session_events.props is not null
),

path_matches as (
    select
        defined_steps.site,
        defined_steps.funnel,
        defined_steps.step,
        session_events.session_id,
        session_events.seq,
        session_events.occurred_at
    from session_events
    join defined_steps
        on defined_steps.site = session_events.site
        and defined_steps.path_like is not null
        and session_events.name = 'pageview'
        and session_events.path like defined_steps.path_like escape '\'
),

event_candidates as (
    select
        defined_steps.site,
        defined_steps.funnel,
        defined_steps.step,
        defined_steps.prop_count,
        session_events.session_id,
        session_events.seq,
        session_events.occurred_at
    from session_events
    join defined_steps
        on defined_steps.site = session_events.site
        and defined_steps.event_name is not null
        and session_events.name = defined_steps.event_name
),

matched_props as (
    select
        event_candidates.site,
        event_candidates.funnel,
        event_candidates.step,
        event_candidates.session_id,
        event_candidates.seq,
        count(*) as matched
    from event_candidates
    join defined_step_props using (site, funnel, step)
    join event_props
        on event_props.session_id = event_candidates.session_id
        and event_props.seq = event_candidates.seq
        and event_props.prop = defined_step_props.prop
        and event_props.value = defined_step_props.value
    group by all
),

event_matches as (
    select
        event_candidates.site,
        event_candidates.funnel,
        event_candidates.step,
        event_candidates.session_id,
        event_candidates.seq,
        event_candidates.occurred_at
    from event_candidates
    left join matched_props using (site, funnel, step, session_id, seq)
    where coalesce(matched_props.matched, 0) = event_candidates.prop_count
),

matches as (
    select * from path_matches
    union all
    select * from event_matches
),

reached (site, funnel, session_id, step, seq, occurred_at, seconds_from_previous) as (
    select
        site,
        funnel,
        session_id,
        1,
        min(seq),
        arg_min(occurred_at, seq),
        null::double
    from matches
    where step = 1
    group by site, funnel, session_id

    union all

    select
        reached.site,
        reached.funnel,
        reached.session_id,
        reached.step + 1,
        min(matches.seq),
        arg_min(matches.occurred_at, matches.seq),
        epoch(arg_min(matches.occurred_at, matches.seq) - reached.occurred_at)
    from reached
    join matches
        on matches.site = reached.site
        and matches.funnel = reached.funnel
        and matches.session_id = reached.session_id
        and matches.step = reached.step + 1
        and matches.seq > reached.seq
    group by reached.site, reached.funnel, reached.session_id, reached.step, reached.occurred_at
),

step_figures as (
    select
        reached.site,
        reached.funnel,
        day_sessions.date,
        reached.step,
        count(*) as visits,
        median(reached.seconds_from_previous) as median_seconds_from_previous
    from reached
    join day_sessions using (site, session_id)
    group by all
),

funnel_days as (
    select distinct day_sessions.site, funnels.funnel, day_sessions.date
    from day_sessions
    join funnels using (site)
),

final as (
    select
        funnel_days.site,
        funnel_days.funnel,
        funnel_days.date,
        defined_steps.step,
        defined_steps.step_name,
        coalesce(step_figures.visits, 0) as visits,
        step_figures.median_seconds_from_previous
    from funnel_days
    join defined_steps using (site, funnel)
    left join step_figures using (site, funnel, date, step)
)

select * from final
