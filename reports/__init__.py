"""Reports: the static dashboard, rendered from the pipeline's public marts.

Which panels exist, and from which mart, is the registry's (footfall/marts.py); the periods
are footfall/periods.py's.

    data.py       reads the marts (read-only) into plain rows
    format.py     number, duration and change formatting (Jinja filters)
    contexts.py   what each page shows: page contexts and chart geometry
    site.py       the Jinja environment, rendering, CSVs and atomic publication
    templates/    base.html, index.html, period.html and _partials, style.css

Reports read tables and never parse logs, and templates never run SQL.
"""

from reports.site import RenderSummary, build, render_site

__all__ = ["RenderSummary", "build", "render_site"]
