-- materialized: work table
--
-- Every non-blank line read this run, one row each, with `is_valid` saying whether it keeps
-- the log line contract (v1, docs/log-format.md). This is the only model that reads the logs.
--
-- $files lists what the runner cut from data_dir/logs: whole files, or copies of only the new
-- complete lines of files that grew. Every field is read as JSON so that a value of the wrong
-- type is caught here rather than silently cast (DuckDB would turn "12" into 12, or "wide"
-- into NULL). With ignore_errors a line that is not a JSON object still yields a row, with
-- every field NULL, so it fails the checks below like any line missing required fields.
-- Unknown fields are ignored, as the contract says.

with

log_lines as (
    select *
    from read_json(
        $files,
        format = 'newline_delimited',
        ignore_errors = true,
        filename = true,
        maximum_object_size = 16777216,
        columns = {
            v: 'JSON', id: 'JSON', ts: 'JSON', site: 'JSON', name: 'JSON', path: 'JSON',
            visitor: 'JSON', hostname: 'JSON', referrer: 'JSON', source: 'JSON',
            utm_source: 'JSON', utm_medium: 'JSON', utm_campaign: 'JSON', utm_term: 'JSON',
            utm_content: 'JSON', browser: 'JSON', browser_version: 'JSON', os: 'JSON',
            os_version: 'JSON', device: 'JSON', country: 'JSON', screen_width: 'JSON',
            props: 'JSON', interactive: 'JSON', engaged_ms: 'JSON', scroll_pct: 'JSON',
            revenue_amount: 'JSON', revenue_currency: 'JSON'
        }
    )
),

sites as (
    select site from pipeline.sites
),

typed as (
    select
        filename as file,

        -- the checks, in the same order as footfall.contract.decode and pipeline/quarantine.py
        is_json_int(v) and try_cast(v as bigint) = 1 as has_version,
        is_json_text(id) and json_text(id) <> '' as has_id,
        is_json_text(ts) and parse_log_ts(json_text(ts)) is not null as has_ts,
        is_json_text(site) and json_text(site) <> '' as has_site,
        is_json_text(name) and json_text(name) <> '' as has_name,
        is_json_text(path) and starts_with(json_text(path), '/') as has_path,
        is_json_text(visitor)
            and regexp_full_match(json_text(visitor), '[0-9a-f]{16}') as has_visitor,
        is_optional_text(hostname) and is_optional_text(referrer) and is_optional_text(source)
            and is_optional_text(utm_source) and is_optional_text(utm_medium)
            and is_optional_text(utm_campaign) and is_optional_text(utm_term)
            and is_optional_text(utm_content) and is_optional_text(browser)
            and is_optional_text(browser_version) and is_optional_text(os)
            and is_optional_text(os_version) and is_optional_text(device)
            and is_optional_int(screen_width) and is_optional_bool(interactive)
            and is_optional_int(engaged_ms) and is_optional_int(scroll_pct)
            and is_optional_props(props) as has_valid_options,
        country is null
            or (is_json_text(country) and regexp_full_match(json_text(country), '[A-Z]{2}'))
            as has_valid_country,
        -- footfall.contract.REVENUE_AMOUNT_RE and CURRENCY_RE; both fields or neither
        is_optional_text(revenue_amount) and is_optional_text(revenue_currency)
            and (revenue_amount is null) = (revenue_currency is null)
            and (revenue_amount is null or regexp_full_match(
                json_text(revenue_amount), '-?[0-9]{1,12}(\.[0-9]{1,6})?'))
            and (revenue_currency is null
                or regexp_full_match(json_text(revenue_currency), '[A-Z]{3}'))
            as has_valid_revenue,

        json_text(id) as event_id,
        parse_log_ts(json_text(ts)) as occurred_at,
        json_text(site) as site,
        json_text(name) as name,
        json_text(path) as path,
        json_text(visitor) as visitor_id,
        json_text(hostname) as hostname,
        json_text(referrer) as referrer,
        json_text(source) as source,
        json_text(utm_source) as utm_source,
        json_text(utm_medium) as utm_medium,
        json_text(utm_campaign) as utm_campaign,
        json_text(utm_term) as utm_term,
        json_text(utm_content) as utm_content,
        json_text(browser) as browser,
        json_text(browser_version) as browser_version,
        json_text(os) as os,
        json_text(os_version) as os_version,
        json_text(device) as device,
        json_text(country) as country,
        try_cast(screen_width as bigint) as screen_width,
        props,
        try_cast(interactive as boolean) as interactive,
        try_cast(engaged_ms as bigint) as engaged_ms,
        try_cast(scroll_pct as bigint) as scroll_pct,
        try_cast(json_text(revenue_amount) as decimal(18, 6)) as revenue_amount,
        json_text(revenue_currency) as revenue_currency
    from log_lines
),

final as (
    select
        typed.file,
        coalesce(
            has_version and has_id and has_ts and has_site and has_name and has_path
            and has_visitor and has_valid_options and has_valid_country and has_valid_revenue
            and typed.site in (select site from sites),
            false
        ) as is_valid,
        typed.* exclude (
            file, has_version, has_id, has_ts, has_site, has_name, has_path, has_visitor,
            has_valid_options, has_valid_country, has_valid_revenue
        )
    from typed
)

select * from final
