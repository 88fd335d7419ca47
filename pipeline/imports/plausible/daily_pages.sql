-- Plausible's imported_pages, imported_entry_pages and imported_exit_pages → daily_pages.
-- Plausible exports no time on page per pageview that footfall could weigh, so the mean is
-- left NULL (timed_pageviews 0).
with

pages as (
    select date, page as path, sum(pageviews) as pageviews, sum(visitors) as visitors
    from imported_pages group by all
),

entries as (
    select date, entry_page as path, sum(entrances) as entries
    from imported_entry_pages group by all
),

exits as (
    select date, exit_page as path, sum(exits) as exits
    from imported_exit_pages group by all
),

final as (
    select
        $site as site,
        date,
        path,
        coalesce(pages.pageviews, 0)::bigint as pageviews,
        coalesce(pages.visitors, 0)::bigint as visitors,
        coalesce(entries.entries, 0)::bigint as entries,
        coalesce(exits.exits, 0)::bigint as exits,
        null::double as avg_time_on_page_s,
        0::bigint as timed_pageviews
    from pages
    full join entries using (date, path)
    full join exits using (date, path)
)

select * from final
