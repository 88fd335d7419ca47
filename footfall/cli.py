"""The `footfall` command: thin over the library, one place turns errors into messages."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import NoReturn

import duckdb

from collector.server import serve
from footfall import __version__, batch
from footfall.config import Config, load
from footfall.demo import run_demo
from footfall.errors import ConfigError, FootfallError
from pipeline import check, checks
from pipeline.imports import import_plausible

Command = Callable[[Config, argparse.Namespace], int] | Callable[[None, argparse.Namespace], int]
COMMANDS: dict[str, tuple[Command, str, str, Callable[[argparse.ArgumentParser], None] | None]] = {}


def command(
    name: str, help: str, example: str,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[Command], Command]:
    """Register a subcommand; every command has help text with an example."""

    def register(fn: Command) -> Command:
        COMMANDS[name] = (fn, help, example, arguments)
        return fn

    return register


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 256:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of workers from 0 to 256")
    return value


def _collect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="override collector.host")
    p.add_argument("--port", type=int, help="override collector.port")
    p.add_argument("--workers", type=_count, metavar="N",
                   help="override collector.workers: N processes on one port (0 = one per core)")


@command("collect", "Run the beacon collector daemon.",
         "footfall collect --config /etc/footfall/config.yaml", _collect_args)
def _collect(cfg: Config, args: argparse.Namespace) -> int:
    batch.check_data_dir(cfg)  # else it would start, and answer every beacon with a 503
    serve(cfg, host=args.host, port=args.port, workers=args.workers)
    return 0


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", type=Path, default=Path("demo"),
                   help="folder for the demo's config, data and site (default: ./demo)")
    p.add_argument("--no-serve", action="store_true", help="build it, print where, and exit")


@command("demo", "Create a demo workspace, send it real traffic and show the result.",
         "footfall demo --workspace /tmp/footfall-demo --no-serve", _demo_args)
def _demo(cfg: Config | None, args: argparse.Namespace) -> int:
    return run_demo(args.workspace, serve=not args.no_serve)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2024-05-01") from None


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--full", action="store_true",
                   help="rebuild everything from the raw logs in data_dir/logs")
    p.add_argument("--since", type=_date, metavar="DATE",
                   help="rebuild sessions and daily figures from this local date on")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print the run summary even when not on a terminal")
    p.add_argument("--no-site", action="store_true",
                   help="stop after the exports; do not render the dashboard into site_dir")


@command("run", "Ingest new log lines, rebuild the affected days, write the exports. "
         "Quiet on success, for cron.",
         "footfall run --config /etc/footfall/config.yaml", _run_args)
def _run(cfg: Config, args: argparse.Namespace) -> int:
    result = batch.run(cfg, full=args.full, since=args.since, render=not args.no_site)
    summary = result.pipeline
    if result.site and (args.verbose or sys.stderr.isatty()):
        print(f"footfall run: site: {result.site.describe()}", file=sys.stderr)
    if args.verbose or sys.stderr.isatty():
        print(f"footfall run: {summary.describe()}", file=sys.stderr)
    elif summary.quarantined:
        print(f"footfall run: {summary.quarantined} malformed log lines moved to "
              f"{cfg.quarantine_dir}", file=sys.stderr)
    return 0


@command("check", "Run the data tests (pipeline/checks/*.sql) against the database.",
         "footfall check --config /etc/footfall/config.yaml")
def _check(cfg: Config, args: argparse.Namespace) -> int:
    batch.check_data_dir(cfg)
    failures = check(cfg)
    total = len(checks.names())
    for failure in failures:
        print(failure.describe(), file=sys.stderr)
    if failures:
        print(f"footfall check: {len(failures)} of {total} data tests failed on "
              f"{cfg.database}; the rows above show what to look at", file=sys.stderr)
        return 1
    print(f"footfall check: all {total} data tests passed on {cfg.database}")
    return 0


def _render_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print what was written even when not on a terminal")


@command("render", "Render the static dashboard into site_dir from the published database; "
         "only changed files are rewritten. Refuses when there is no database.",
         "footfall render --config /etc/footfall/config.yaml", _render_args)
def _render(cfg: Config, args: argparse.Namespace) -> int:
    rendered = batch.render(cfg)
    if args.verbose or sys.stderr.isatty():
        print(f"footfall render: {rendered.describe()} into {cfg.site_dir}", file=sys.stderr)
    return 0


def _import_args(p: argparse.ArgumentParser) -> None:
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True,
                             parser_class=_Parser)
    plausible = kinds.add_parser(
        "plausible", help="the zip of CSVs that Plausible's Export produces",
        description="Read Plausible's CSV export into the daily tables, for the days before "
                    "the site's first footfall event; importing the same zip again changes "
                    "nothing. Then render the dashboard.",
        epilog="example:\n  footfall import plausible plausible-export.zip --site example.com",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    plausible.add_argument("archive", type=Path, metavar="EXPORT.zip",
                           help="the zip downloaded from Plausible's site settings, Export")
    plausible.add_argument("--site", required=True, metavar="DOMAIN",
                           help="the configured site the history belongs to")
    for kind in (plausible,):  # so --config may also follow the kind's own arguments
        kind.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                          help="path to config.yaml (default: ./config.yaml)")


@command("import", "Bring in history from elsewhere; `footfall import KIND --help` for each "
         "kind (plausible: Plausible's CSV export).",
         "footfall import plausible plausible-export.zip --site example.com "
         "--config /etc/footfall/config.yaml", _import_args)
def _import(cfg: Config, args: argparse.Namespace) -> int:
    summary = import_plausible(cfg, args.archive, args.site)
    print(f"footfall import: {summary.describe(args.site)}", file=sys.stderr)
    batch.render(cfg)
    return 0


# Commands that build their own config instead of loading --config.
NO_CONFIG = {"demo"}


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line too, with where to read more, instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="footfall",
        description="Privacy-first, cookie-free web analytics you run on your own server.",
        epilog="example: footfall collect --config ./config.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"footfall {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_fn, help_text, example, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=f"example:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name not in NO_CONFIG:
            p.add_argument("--config", type=Path, default=Path("config.yaml"),
                           help="path to config.yaml (default: ./config.yaml)")
        if arguments:
            arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fn = COMMANDS[args.command][0]
    cfg: Config | None = None
    try:
        cfg = None if args.command in NO_CONFIG else load(args.config)
        return fn(cfg, args)  # type: ignore[arg-type]
    except (FootfallError, OSError, duckdb.Error) as exc:
        print(f"footfall {args.command}: {explain(exc, cfg)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def explain(exc: BaseException, cfg: Config | None) -> str:
    """What went wrong and how to fix it, on one line (a ConfigError may list several
    problems, one per line). Errors from a library call get a fix from their kind."""
    if isinstance(exc, ConfigError):
        return str(exc)
    cause = _library_cause(exc)
    text = _one_line(str(exc) if isinstance(exc, FootfallError) or cause is None
                     else _describe(cause))
    fix = _fix(cause, cfg) if cause is not None else None
    return f"{text}; {fix}" if fix else text


def _library_cause(exc: BaseException) -> OSError | duckdb.Error | None:
    """The OSError or DuckDB error behind `exc`, if any: a library may have wrapped it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError | duckdb.Error):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: OSError | duckdb.Error) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _one_line(text: str) -> str:
    return " ".join(text.split())


_OS_FIXES = {
    errno.EACCES: "give the user footfall runs as access to it (chown or chmod)",
    errno.EPERM: "give the user footfall runs as access to it (chown or chmod)",
    errno.ENOENT: "create it, or fix the path in the config",
    errno.ENOTDIR: "a file stands where a folder should be: move it, or fix the path in the "
                   "config",
    errno.EEXIST: "a file stands where a folder should be: move it, or fix the path in the "
                  "config",
    errno.EISDIR: "a folder stands where a file should be: move it, or fix the path in the "
                  "config",
    errno.EROFS: "that file system is read-only: remount it writable, or point the config "
                 "at another folder",
    errno.ENOSPC: "the disk is full: free some space and run again (the last good state was "
                  "kept)",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EADDRINUSE: "another process listens on that port: stop it, or choose another "
                      "collector.port (or --port)",
    errno.EADDRNOTAVAIL: "that address is not on this machine: fix collector.host (or --host)",
}


def _fix(cause: OSError | duckdb.Error, cfg: Config | None) -> str | None:
    if isinstance(cause, OSError):
        return _OS_FIXES.get(cause.errno or 0)
    if isinstance(cause, duckdb.OutOfMemoryException):
        return "raise pipeline.memory_limit in the config, or give the machine more memory"
    if isinstance(cause, duckdb.IOException | duckdb.SerializationException) and cfg:
        return (f"if {cfg.database} is damaged or not a DuckDB file, move it aside "
                f"(mv {cfg.database} {cfg.database}.broken) and run `footfall run --full` to "
                f"rebuild it from {cfg.logs_dir}")
    return None


if __name__ == "__main__":
    sys.exit(main())
