-- An experiment's figures are what they claim: no more converting visitors than visitors,
-- rates and p-values between 0 and 1, each rate inside its own interval, and every row of
-- one experiment agreeing on its range, contamination and sample-ratio check.
select site, experiment, variant, visitors, converting_visitors, conversion_rate, rate_low,
    rate_high, p_value, srm_p_value
from experiment_results
where converting_visitors > visitors
    or conversion_rate not between 0 and 1
    or conversion_rate < rate_low - 1e-12
    or conversion_rate > rate_high + 1e-12
    or p_value not between 0 and 1
    or srm_p_value not between 0 and 1
    or (site, experiment) in (
        select (site, experiment)
        from experiment_results
        group by site, experiment
        having count(distinct (first_date, last_date, contaminated_visitors, srm_p_value,
                               has_srm)) > 1
    )
