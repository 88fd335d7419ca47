-- materialized: incremental by site
--
-- A/B experiments from config (pipeline.experiments), one row per experiment and variant over
-- the experiment's whole date range (docs/metrics.md, "Experiments"). Not per day: a new day
-- changes every figure of the experiment, so each site with an affected day has all its
-- experiments recomputed from the stored events (one pass over that site's events).
--
-- A visitor (a daily visitor id) takes the first value of the experiment's prop it sent in
-- the range, on the configured event or any event. A visitor seen with two values is counted
-- in no variant, only in contaminated_visitors. A visitor converts with a goal event at or
-- after its first exposure, in the range. Each variant is compared with the control: the
-- uplift's 95% interval is Newcombe's hybrid score interval (from the Wilson intervals of
-- both rates), the relative uplift's is the log risk-ratio interval, and the p-value is the
-- pooled two-proportion z-test, or Fisher's exact test when an expected cell count of the
-- 2×2 table is below 5. The sample-ratio check is Pearson's chi-square of the visitors per
-- variant against the configured weights, or an even split.

with

affected_sites as (
    select distinct site from int_affected_days
),

defined_experiments as (
    select * from pipeline.experiments
    semi join affected_sites using (site)
),

defined_goal_props as (
    select * from pipeline.experiment_goal_props
),

defined_weights as (
    select * from pipeline.experiment_weights
),

-- only events with props can assign a variant: a cheap filter before the JSON is read
exposures as (
    select
        defined_experiments.site,
        defined_experiments.experiment,
        events.visitor_id,
        events.date,
        {'at': events.occurred_at, 'id': events.event_id} as seq,
        json_extract(events.props, defined_experiments.prop_path) as variant_json
    from events
    join defined_experiments
        on events.site = defined_experiments.site
        and (defined_experiments.start_date is null
             or events.date >= defined_experiments.start_date)
        and (defined_experiments.end_date is null
             or events.date <= defined_experiments.end_date)
        and (defined_experiments.event_name is null
             or events.name = defined_experiments.event_name)
    where events.props is not null
        and json_extract(events.props, defined_experiments.prop_path) is not null
),

exposed_visitors as (
    select distinct site, experiment, visitor_id from exposures
),

visitor_variants as (
    select
        site,
        experiment,
        visitor_id,
        arg_min(
            case when json_type(variant_json) = 'VARCHAR' then json_text(variant_json)
                 else variant_json::varchar end,
            seq
        ) as variant,
        count(distinct variant_json::varchar) as variants_seen,
        min(seq) as first_seq
    from exposures
    group by site, experiment, visitor_id
),

-- goals only of exposed visitors: the stored events of everyone else are never joined
goal_candidates as (
    select
        defined_experiments.site,
        defined_experiments.experiment,
        defined_experiments.goal_prop_count,
        events.visitor_id,
        events.props,
        {'at': events.occurred_at, 'id': events.event_id} as seq
    from events
    semi join (select distinct site, visitor_id from exposed_visitors) using (site, visitor_id)
    join defined_experiments
        on events.site = defined_experiments.site
        and (defined_experiments.start_date is null
             or events.date >= defined_experiments.start_date)
        and (defined_experiments.end_date is null
             or events.date <= defined_experiments.end_date)
    semi join exposed_visitors
        on exposed_visitors.site = events.site
        and exposed_visitors.experiment = defined_experiments.experiment
        and exposed_visitors.visitor_id = events.visitor_id
    where (defined_experiments.goal_path_like is not null
           and events.name = 'pageview'
           and events.path like defined_experiments.goal_path_like escape '\')
        or (defined_experiments.goal_event is not null
            and events.name = defined_experiments.goal_event)
),

goal_prop_matches as (
    select
        goal_candidates.site,
        goal_candidates.experiment,
        goal_candidates.visitor_id,
        goal_candidates.seq,
        count(*) as matched
    from goal_candidates
    join defined_goal_props using (site, experiment)
    where goal_candidates.props is not null
        and defined_goal_props.value = (
            case when json_type(json_extract(goal_candidates.props, defined_goal_props.prop_path)) = 'VARCHAR'
                 then json_text(json_extract(goal_candidates.props, defined_goal_props.prop_path))
                 else json_extract(goal_candidates.props, defined_goal_props.prop_path)::varchar end
        )
    group by all
),

goal_events as (
    select goal_candidates.site, goal_candidates.experiment, goal_candidates.visitor_id,
        goal_candidates.seq
    from goal_candidates
    left join goal_prop_matches using (site, experiment, visitor_id, seq)
    where coalesce(goal_prop_matches.matched, 0) = goal_candidates.goal_prop_count
),

converted_visitors as (
    select distinct visitor_variants.site, visitor_variants.experiment, visitor_variants.visitor_id
    from visitor_variants
    join goal_events
        on goal_events.site = visitor_variants.site
        and goal_events.experiment = visitor_variants.experiment
        and goal_events.visitor_id = visitor_variants.visitor_id
        and goal_events.seq >= visitor_variants.first_seq
    where visitor_variants.variants_seen = 1
),

experiment_spans as (
    select
        site,
        experiment,
        min(date) as first_date,
        max(date) as last_date
    from exposures
    group by site, experiment
),

contamination as (
    select
        site,
        experiment,
        count(*) filter (where variants_seen > 1) as contaminated_visitors
    from visitor_variants
    group by site, experiment
),

variant_visitors as (
    select
        visitor_variants.site,
        visitor_variants.experiment,
        visitor_variants.variant,
        count(*) as visitors,
        count(converted_visitors.visitor_id) as converting_visitors
    from visitor_variants
    left join converted_visitors using (site, experiment, visitor_id)
    where visitor_variants.variants_seen = 1
    group by all
),

-- Variants are whatever values the prop arrives with: past the control and the largest
-- max_experiment_variants() others, they are added up into one '(other)' row, which no split
-- expects (so it is a sample-ratio mismatch) and which is compared with nothing.
observed_counts as (
    select
        ranked.site,
        ranked.experiment,
        case when ranked.variant_rank > max_experiment_variants() then '(other)'
             else ranked.variant end as variant,
        sum(ranked.visitors)::bigint as visitors,
        sum(ranked.converting_visitors)::bigint as converting_visitors
    from (
        select
            variant_visitors.*,
            row_number() over (
                partition by variant_visitors.site, variant_visitors.experiment
                order by variant_visitors.variant = defined_experiments.control desc,
                    variant_visitors.visitors desc, variant_visitors.variant
            ) - 1 as variant_rank
        from variant_visitors
        join defined_experiments using (site, experiment)
    ) as ranked
    group by all
),

-- every variant seen, configured with a weight, or the control, even with no visitors
all_variants as (
    select site, experiment, variant from observed_counts
    union
    select site, experiment, variant from defined_weights semi join affected_sites using (site)
    union
    select site, experiment, control as variant from defined_experiments
),

has_weights as (
    select distinct site, experiment from defined_weights
),

variant_counts as (
    select
        all_variants.site,
        all_variants.experiment,
        all_variants.variant,
        all_variants.variant = defined_experiments.control as is_control,
        coalesce(observed_counts.visitors, 0) as visitors,
        coalesce(observed_counts.converting_visitors, 0) as converting_visitors,
        case
            when all_variants.variant = '(other)' then 0.0
            when has_weights.site is null
                then 1 / count(*) filter (where all_variants.variant <> '(other)') over experiment
            else coalesce(defined_weights.weight, 0)
                / sum(coalesce(defined_weights.weight, 0)) over experiment
        end as expected_share
    from all_variants
    join defined_experiments using (site, experiment)
    left join observed_counts using (site, experiment, variant)
    left join defined_weights using (site, experiment, variant)
    left join has_weights using (site, experiment)
    window experiment as (partition by all_variants.site, all_variants.experiment)
),

-- Wilson score interval of each rate, z = 1.959963984540054 (95%)
rates as (
    select
        *,
        case when visitors > 0 then converting_visitors / visitors end as conversion_rate,
        -- clamped: at a rate of 0 or 1 rounding would put the end a hair outside [0, 1]
        case when visitors > 0 then greatest(0.0,
            (conversion_rate + 1.959963984540054 ^ 2 / (2 * visitors)
             - 1.959963984540054 * sqrt(conversion_rate * (1 - conversion_rate) / visitors
                                        + 1.959963984540054 ^ 2 / (4 * visitors ^ 2)))
            / (1 + 1.959963984540054 ^ 2 / visitors))
        end as rate_low,
        case when visitors > 0 then least(1.0,
            (conversion_rate + 1.959963984540054 ^ 2 / (2 * visitors)
             + 1.959963984540054 * sqrt(conversion_rate * (1 - conversion_rate) / visitors
                                        + 1.959963984540054 ^ 2 / (4 * visitors ^ 2)))
            / (1 + 1.959963984540054 ^ 2 / visitors))
        end as rate_high
    from variant_counts
),

sample_ratio as (
    select
        site,
        experiment,
        -- a variant no weight allows (share 0) is a broken assignment outright
        bool_or(expected_share = 0 and visitors > 0) as has_unexpected_variant,
        sum(case when expected_share > 0
                 then (visitors - total * expected_share) ^ 2 / (total * expected_share)
            end) as chi_square,
        count(*) filter (where expected_share > 0) - 1 as degrees_of_freedom
    from (select *, sum(visitors) over (partition by site, experiment) as total from rates)
    where total > 0
    group by site, experiment
),

comparisons as (
    select
        variant.site,
        variant.experiment,
        variant.variant,
        variant.visitors as n1,
        variant.converting_visitors as x1,
        variant.conversion_rate as p1,
        variant.rate_low as l1,
        variant.rate_high as u1,
        control.visitors as n2,
        control.converting_visitors as x2,
        control.conversion_rate as p2,
        control.rate_low as l2,
        control.rate_high as u2,
        (variant.converting_visitors + control.converting_visitors)
            / (variant.visitors + control.visitors) as pooled,
        -- the smallest expected cell of the 2×2 table under no difference
        least(variant.visitors, control.visitors)
            * least(variant.converting_visitors + control.converting_visitors,
                    variant.visitors + control.visitors
                    - variant.converting_visitors - control.converting_visitors)
            / (variant.visitors + control.visitors) as min_expected
    from rates as variant
    join rates as control
        on control.site = variant.site
        and control.experiment = variant.experiment
        and control.is_control
    where not variant.is_control
        and variant.variant <> '(other)'
        and variant.visitors > 0
        and control.visitors > 0
),

-- Fisher's exact test, two-sided: the hypergeometric probabilities of every table with the
-- same margins that are no more likely than the one observed. Only for small expected
-- counts, where the smallest margin is below 10, so at most 10 tables per comparison.
fisher_tables as (
    select
        site,
        experiment,
        variant,
        x1,
        k,
        ln_choose(n1, k) + ln_choose(n2, x1 + x2 - k) - ln_choose(n1 + n2, x1 + x2) as ln_p
    from comparisons,
        unnest(range(greatest(0, x1 + x2 - n2), least(n1, x1 + x2) + 1)) as tables(k)
    where min_expected < 5
),

fisher as (
    select
        tables.site,
        tables.experiment,
        tables.variant,
        least(1.0, sum(exp(tables.ln_p))) as p_value
    from fisher_tables as tables
    join fisher_tables as observed
        on observed.site = tables.site
        and observed.experiment = tables.experiment
        and observed.variant = tables.variant
        and observed.k = observed.x1
    -- the relative tolerance scipy uses, so equally likely tables count despite rounding
    where tables.ln_p <= observed.ln_p + 1e-7
    group by all
),

tests as (
    select
        comparisons.site,
        comparisons.experiment,
        comparisons.variant,
        comparisons.p1 - comparisons.p2 as uplift,
        comparisons.p1 - comparisons.p2
            - sqrt((comparisons.p1 - comparisons.l1) ^ 2 + (comparisons.u2 - comparisons.p2) ^ 2)
            as uplift_low,
        comparisons.p1 - comparisons.p2
            + sqrt((comparisons.u1 - comparisons.p1) ^ 2 + (comparisons.p2 - comparisons.l2) ^ 2)
            as uplift_high,
        case when comparisons.x2 > 0 then comparisons.p1 / comparisons.p2 - 1 end
            as relative_uplift,
        case when comparisons.x1 > 0 and comparisons.x2 > 0 then
            exp(ln(comparisons.p1 / comparisons.p2) - 1.959963984540054 * sqrt(
                1 / comparisons.x1 - 1 / comparisons.n1 + 1 / comparisons.x2 - 1 / comparisons.n2
            )) - 1
        end as relative_uplift_low,
        case when comparisons.x1 > 0 and comparisons.x2 > 0 then
            exp(ln(comparisons.p1 / comparisons.p2) + 1.959963984540054 * sqrt(
                1 / comparisons.x1 - 1 / comparisons.n1 + 1 / comparisons.x2 - 1 / comparisons.n2
            )) - 1
        end as relative_uplift_high,
        case
            when comparisons.min_expected < 5 then fisher.p_value
            else erfc_approx(abs(comparisons.p1 - comparisons.p2)
                / sqrt(comparisons.pooled * (1 - comparisons.pooled)
                       * (1 / comparisons.n1 + 1 / comparisons.n2)) / sqrt(2))
        end as p_value,
        case when comparisons.min_expected < 5 then 'fisher' else 'z' end as test
    from comparisons
    left join fisher using (site, experiment, variant)
),

final as (
    select
        rates.site,
        rates.experiment,
        rates.variant,
        rates.is_control,
        experiment_spans.first_date,
        experiment_spans.last_date,
        (experiment_spans.last_date - experiment_spans.first_date + 1)::bigint as days,
        rates.visitors,
        rates.converting_visitors,
        rates.conversion_rate,
        rates.rate_low,
        rates.rate_high,
        tests.uplift,
        tests.uplift_low,
        tests.uplift_high,
        tests.relative_uplift,
        tests.relative_uplift_low,
        tests.relative_uplift_high,
        tests.p_value,
        tests.test,
        coalesce(contamination.contaminated_visitors, 0) as contaminated_visitors,
        rates.expected_share,
        case when sample_ratio.has_unexpected_variant then 0.0
             else chi_square_tail(sample_ratio.chi_square, sample_ratio.degrees_of_freedom)
        end as srm_p_value,
        coalesce(sample_ratio.has_unexpected_variant
                 or chi_square_tail(sample_ratio.chi_square, sample_ratio.degrees_of_freedom)
                    < 0.001, false) as has_srm
    from rates
    left join experiment_spans using (site, experiment)
    left join contamination using (site, experiment)
    left join tests using (site, experiment, variant)
    left join sample_ratio using (site, experiment)
)

select * from final
