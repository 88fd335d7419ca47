"""The pipeline: JSONL logs → DuckDB models → CSV and Parquet exports.

    sources.py      which log bytes are new (per-file offsets, complete lines only)
    quarantine.py   why a malformed line was refused; data_dir/quarantine/
    models.py       the SQL models in models/{staging,intermediate,marts}/ and their runner
    exports.py      site_dir/exports/: CSV per mart and site, Parquet; raw days in data_dir
    database.py     the private build copy and its atomic publication
    checks.py       data tests in checks/*.sql (`footfall check`)
    steps.py        `footfall run`: all of the above, in order
"""

from pipeline.checks import check
from pipeline.steps import RunSummary, run

__all__ = ["RunSummary", "check", "run"]
