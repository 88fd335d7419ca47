"""Every error footfall raises on purpose.

    FootfallError                 caught once, in the CLI, and printed without a traceback
     ├── ConfigError              the config file is missing, unreadable or invalid
     ├── BeaconError              a beacon was refused; carries the HTTP status and reason
     ├── StorageError             an event could not be handed to the OS (disk full, perms)
     └── PipelineError            footfall run/check could not finish; the last good state stays
"""

from __future__ import annotations


class FootfallError(Exception):
    """Base class: a problem with a message meant for the operator."""


class ConfigError(FootfallError):
    """The config is invalid. `problems` lists every one, each naming key and fix."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} config {noun}:\n{lines}")


class BeaconError(FootfallError):
    """A beacon was refused; `status` is the 4xx to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class StorageError(FootfallError):
    """The log could not be written; the collector answers 503 and keeps running."""


class PipelineError(FootfallError):
    """The pipeline stopped (locked, unreadable logs, failed data tests); nothing was published."""
