"""Every error footfall raises on purpose.

    FootfallError                 caught once, in the CLI, and printed without a traceback
     ├── ConfigError              the config file is missing, unreadable or invalid
     ├── BeaconError              a beacon was refused; carries the HTTP status and reason
     ├── StorageError             an event could not be handed to the OS (disk full, perms)
     ├── CollectorError           the collector cannot keep serving (its workers keep dying)
     ├── PipelineError            footfall run/check could not finish; the last good state stays
     └── WorkspaceError           a folder or file the config names cannot be used as it is
                                  (data_dir is a file, site_dir is missing or read-only, no
                                  database yet); found before anything is written
"""

from __future__ import annotations


class FootfallError(Exception):
    """Base class: a problem with a message meant for the operator."""


class ConfigError(FootfallError):
    """The config is invalid. `problems` lists every one, each naming key and fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        if len(problems) == 1:  # one problem fits on the one line every CLI error gets
            super().__init__(f"{source}: {problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} config problems:\n{lines}")


class BeaconError(FootfallError):
    """A beacon was refused; `status` is the 4xx to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class StorageError(FootfallError):
    """The log could not be written; the collector answers 503 and keeps running."""


class CollectorError(FootfallError):
    """The collector cannot keep serving: its worker processes exit as soon as they start."""


class PipelineError(FootfallError):
    """The pipeline stopped (locked, unreadable logs, failed data tests).

    The published database stays as it was; exports already written stay too.
    """


class WorkspaceError(FootfallError):
    """A path from the config cannot be used; the message names it and the fix."""
