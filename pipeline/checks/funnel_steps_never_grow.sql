-- A funnel never gains visits from one step to the next: step k+1 <= step k.
select later.site, later.funnel, later.date, later.step, later.visits, earlier.visits as previous_visits
from funnel_steps as later
join funnel_steps as earlier
    on earlier.site = later.site
    and earlier.funnel = later.funnel
    and earlier.date = later.date
    and earlier.step = later.step - 1
where later.visits > earlier.visits
