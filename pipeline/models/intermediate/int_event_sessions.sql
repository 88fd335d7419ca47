-- materialized: table, in batches of the visitors of int_visitor_events
--
-- Sessionisation, exactly as docs/metrics.md defines it:
--   * a session is a visitor's events on one site, in time order (ties broken by event id);
--   * a new session starts when the gap since that visitor's previous event exceeds
--     $timeout_minutes (sessions.timeout_minutes);
--   * sessions are not cut at midnight; every event, interactive or not, extends a session;
--   * a session is identified by the id of its first event, and belongs to the local date of
--     that event.
-- It also works out each pageview's time on page: the engaged time of the engagement events
-- that follow it before the session's next pageview or, without any, the gap to that next
-- pageview. The last pageview of a session without engagement has no time on page.
--
-- One narrow row per event (the window functions sort only these columns); the events mart
-- joins it back to the full lines by line_id.

with

-- one batch of visitors (pipeline/models.py, visitor_batches): the window functions and the
-- joins below work visitor by visitor, and all at once they outgrew a 3GB memory limit
-- between 5M and 20M events. Its own hash, not the shards' hash(visitor_id), which would
-- put a shard's visitors in one batch.
visitor_events as (
    select line_id, site, visitor_id, occurred_at, event_id, name, interactive, engaged_ms
    from int_visitor_events
    where hash(visitor_id || ':session batch') % $visitor_batches = $visitor_batch
),

sites as (
    select site, timezone from pipeline.sites
),

timeline as (
    select
        *,
        row_number() over visitor_timeline as visitor_seq,
        lag(occurred_at) over visitor_timeline as previous_at
    from visitor_events
    window visitor_timeline as (partition by site, visitor_id order by occurred_at, event_id)
),

sessioned as (
    select
        *,
        last_value(
            case
                when previous_at is null
                    or occurred_at - previous_at > to_minutes($timeout_minutes)
                    then event_id
            end ignore nulls
        ) over visitor_so_far as session_id,
        count(*) filter (where name = 'pageview') over visitor_so_far as page_number
    from timeline
    window visitor_so_far as (
        partition by site, visitor_id
        order by visitor_seq
        rows between unbounded preceding and current row
    )
),

-- one row per pageview and the events that follow it up to the next pageview
pages as (
    select
        session_id,
        page_number,
        min(visitor_seq) filter (where name = 'pageview') as pageview_seq,
        min(occurred_at) filter (where name = 'pageview') as viewed_at,
        sum(engaged_ms) filter (where name = 'engagement') as engaged_ms
    from sessioned
    where page_number > 0
    group by session_id, page_number
),

page_times as (
    select
        this_page.session_id,
        this_page.pageview_seq as visitor_seq,
        coalesce(
            this_page.engaged_ms / 1000.0,
            epoch(next_page.viewed_at - this_page.viewed_at)
        ) as time_on_page_s
    from pages as this_page
    left join pages as next_page
        on next_page.session_id = this_page.session_id
        and next_page.page_number = this_page.page_number + 1
    where this_page.pageview_seq is not null
),

final as (
    select
        sessioned.event_id,
        sessioned.line_id,
        sessioned.site,
        sessioned.visitor_id,
        sessioned.session_id,
        sessioned.visitor_seq,
        to_local_time(sessioned.occurred_at, sites.timezone) as local_time,
        is_interactive_event(sessioned.name, sessioned.interactive) as is_interactive,
        page_times.time_on_page_s
    from sessioned
    join sites using (site)
    left join page_times using (session_id, visitor_seq)
)

select * from final
