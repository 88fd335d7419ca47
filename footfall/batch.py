"""The batch job: the pipeline, then the dashboard. `footfall run`, `footfall render` and
`footfall demo` all come through here, so "run, then render" lives in one place.

Before anything is written, the folders the config names are checked: a `data_dir` that is a
file or (for a run) missing, a `site_dir` that cannot be created or written, and a render with
no database each stop with a WorkspaceError that names the path and the fix. A typo in
`data_dir` therefore never publishes an empty dashboard over a live one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from footfall.config import Config
from footfall.errors import WorkspaceError
from pipeline import RunSummary
from pipeline import run as run_pipeline
from reports import RenderSummary, render_site


@dataclass(frozen=True)
class BatchResult:
    pipeline: RunSummary
    site: RenderSummary | None  # None when rendering was not asked for


def run(cfg: Config, *, full: bool = False, since: date | None = None, render: bool = True,
        now: datetime | None = None, progress: TextIO | None = sys.stderr) -> BatchResult:
    """Run the pipeline (it writes site_dir/exports), then render the dashboard."""
    check_data_dir(cfg)
    if not cfg.data_dir.exists():  # else a typo here would publish an empty dashboard
        raise WorkspaceError(
            f"data_dir {cfg.data_dir} does not exist: point data_dir in {_config_name(cfg)} at "
            f"the folder the collector writes to (it creates logs/ there with its first event)")
    check_site_dir(cfg)  # the exports land in site_dir even without a render
    summary = run_pipeline(cfg, full=full, since=since, progress=progress)
    # also when nothing was new: "today" and "yesterday" move on
    site = _render(cfg, now) if render else None
    return BatchResult(summary, site)


def render(cfg: Config, now: datetime | None = None) -> RenderSummary:
    """Render the dashboard from the published database; refuses when there is none."""
    check_data_dir(cfg)
    check_site_dir(cfg)
    return _render(cfg, now)


def _render(cfg: Config, now: datetime | None) -> RenderSummary:
    if not cfg.database.is_file():
        raise WorkspaceError(
            f"no database at {cfg.database}, so there is nothing to render and {cfg.site_dir} "
            f"was left as it was: run `footfall run` once the collector has written logs to "
            f"{cfg.logs_dir}, or fix data_dir in {_config_name(cfg)}")
    return render_site(cfg, now)


def check_data_dir(cfg: Config) -> None:
    if cfg.data_dir.exists() and not cfg.data_dir.is_dir():
        raise WorkspaceError(
            f"data_dir {cfg.data_dir} is a file, not a folder: point data_dir in "
            f"{_config_name(cfg)} at a folder (it holds logs/, salts/ and the database)")


def check_site_dir(cfg: Config) -> None:
    """site_dir must be a writable folder, or be creatable in a folder that exists.

    Only the last level is created: a site_dir whose parent is missing is more likely a typo
    than a new dashboard.
    """
    site = cfg.site_dir
    where = _config_name(cfg)
    if site.exists():
        if not site.is_dir():
            raise WorkspaceError(f"site_dir {site} is a file, not a folder: point site_dir "
                                 f"in {where} at a folder")
        _require_writable(site, "site_dir", where)
        return
    if not site.parent.is_dir():
        raise WorkspaceError(
            f"site_dir {site} does not exist, nor does the folder it would go in: fix site_dir "
            f"in {where}, or create it with `mkdir -p {site}`")
    _require_writable(site.parent, "the folder that would hold site_dir", where)


def _require_writable(folder: Path, what: str, where: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WorkspaceError(
            f"{what} {folder} is not writable for this user: give it write access (chown or "
            f"chmod), or point site_dir in {where} elsewhere")


def _config_name(cfg: Config) -> str:
    return str(cfg.source) if cfg.source else "the config"
