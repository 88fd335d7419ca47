"""The one typed config schema, loaded and validated in one place.

Each key is a dataclass field with a default and a `doc` line. Loading walks the raw YAML
against the dataclasses, collects every problem (each naming the key and how to fix it)
and raises a single ConfigError. Unknown keys are errors, to catch typos.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from footfall.contract import PropValue
from footfall.errors import ConfigError


def doc(text: str, **kwargs: Any) -> Any:
    """A dataclass field with a one-line description, kept for docs and error messages."""
    metadata = {"doc": text}
    return field(metadata=metadata, **kwargs)


@dataclass(frozen=True)
class Site:
    domain: str = doc("Host name the tracker reports, e.g. example.com (no scheme, no www.)")
    timezone: str = doc("IANA time zone whose calendar days the reports use", default="UTC")
    name: str | None = doc("Display name in reports; defaults to the domain", default=None)

    @property
    def title(self) -> str:
        return self.name or self.domain


@dataclass(frozen=True)
class Collector:
    host: str = doc("Address the collector listens on", default="127.0.0.1")
    port: int = doc("TCP port the collector listens on", default=8787)
    trusted_proxies: list[str] = doc(
        "CIDRs of reverse proxies whose X-Forwarded-For is believed", default_factory=list
    )
    rotate_mb: int = doc("Start a new log file once the current one reaches this size", default=64)
    fsync_interval_s: float = doc(
        "Seconds between fsyncs of the log (power-loss window); 0 fsyncs every event",
        default=1.0,
    )
    geoip_database: Path | None = doc(
        "Optional MaxMind GeoLite2/GeoIP2 Country .mmdb file; the bundled data is used otherwise",
        default=None,
    )
    referrer_spam: bool = doc("Drop beacons whose referrer is a known spam domain", default=True)
    exclude_paths: list[str] = doc(
        "Path globs never recorded, e.g. /admin/*", default_factory=list
    )
    body_timeout_s: float = doc(
        "Seconds a client may take to send a beacon's body; slower gets 408", default=5.0
    )
    keepalive_s: float = doc(
        "Seconds an idle connection, or one still sending its headers, stays open", default=5.0
    )
    max_connections: int = doc(
        "Open connections at most; more are answered 503 and closed", default=1000
    )
    rate_limit_per_min: int = doc(
        "Beacons per minute from one client IP (burst included); more get 429; 0 turns it off",
        default=600,
    )
    workers: int = doc(
        "Collector processes sharing the port (SO_REUSEPORT), each with its own log files; "
        "0 = one per core",
        default=1,
    )


@dataclass(frozen=True)
class Sessions:
    timeout_minutes: int = doc("Inactivity gap that starts a new session", default=30)


@dataclass(frozen=True)
class Privacy:
    min_visitors: int = doc(
        "Fold breakdown rows with fewer visitors than this into (other) in exports and the "
        "site; 0 turns it off",
        default=0,
    )


@dataclass(frozen=True)
class Exports:
    publish_raw: bool = doc(
        "Write the raw per-day event files into site_dir/exports/ (published with the site) "
        "instead of data_dir/exports/",
        default=False,
    )


@dataclass(frozen=True)
class Retention:
    raw_days: int | None = doc(
        "Keep the raw logs of this many past UTC days besides today; older days are deleted "
        "once ingested (the database keeps their events); unset keeps them forever",
        default=None,
    )


@dataclass(frozen=True)
class Report:
    drilldown_rows: int = doc(
        "Filtered dashboards for the top rows of each drill-down panel; 0 turns them off",
        default=10,
    )


#: What can run footfall run's shard jobs (pipeline/shards.py).
EXECUTORS = ("local", "dask")
#: Shards at most: each makes a few files per run, and a job per shard.
MAX_SHARDS = 256
_SCHEDULER = re.compile(r"(tcp|tls|ws|wss)://[^\s/]+:\d+")


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)")
# as DuckDB reads them: KB, MB… are powers of 1000, KiB, MiB… of 1024
_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
          "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def size_bytes(text: str) -> int | None:
    """The bytes of a size such as 2GB or 512MiB (pipeline.memory_limit), or None."""
    found = _SIZE.fullmatch(text)
    return None if found is None else int(float(found[1]) * _UNITS[found[2]])


@dataclass(frozen=True)
class PipelineSettings:
    memory_limit: str = doc("DuckDB memory limit for footfall run, e.g. 2GB", default="2GB")
    threads: int = doc("DuckDB worker threads for footfall run; 0 uses every core", default=0)
    shards: int = doc(
        "Partitions by visitor hash that read and sessionise in parallel jobs; 1 = one job",
        default=1,
    )
    executor: str = doc("What runs the shard jobs: local (a process pool) or dask",
                        default="local")
    scheduler: str | None = doc(
        "Dask scheduler address, e.g. tcp://10.0.0.5:8786; unset with dask starts a local "
        "cluster sized to the machine", default=None,
    )


@dataclass(frozen=True)
class FunnelStep:
    name: str = doc("Label of the step in reports")
    path: str | None = doc("Match pageviews by exact path or a * glob", default=None)
    event: str | None = doc("Match a custom event by name", default=None)
    props: dict[str, PropValue] | None = doc(
        "With event: props the event must carry with these exact values", default=None
    )


@dataclass(frozen=True)
class Funnel:
    name: str = doc("Funnel name")
    site: str = doc("Domain of one of the configured sites")
    steps: list[FunnelStep] = doc("Two or more ordered steps", default_factory=list)


@dataclass(frozen=True)
class Goal:
    path: str | None = doc("Converts on a pageview of this exact path or * glob", default=None)
    event: str | None = doc("Converts on a custom event of this name", default=None)
    props: dict[str, PropValue] | None = doc(
        "With event: props the event must carry with these exact values", default=None
    )


@dataclass(frozen=True)
class Experiment:
    name: str = doc("Experiment name, unique per site")
    site: str = doc("Domain of one of the configured sites")
    prop: str = doc("The prop that carries the variant, e.g. variant")
    control: str = doc("The control variant's value of the prop")
    goal: Goal = doc("What counts as converting: a path or an event, like a funnel step")
    event: str | None = doc(
        "The event the variant arrives on; default: any event carrying the prop", default=None
    )
    start: date | None = doc("First local date counted (YYYY-MM-DD); default: no limit",
                             default=None)
    end: date | None = doc("Last local date counted (YYYY-MM-DD); default: still running",
                           default=None)
    weights: dict[str, float] | None = doc(
        "Intended share of each variant, e.g. {A: 1, B: 1}; default: an even split of the "
        "variants seen", default=None
    )


@dataclass(frozen=True)
class Live:
    token: str | None = doc(
        "Bearer token for the live routes (/live/, /api/live); unset turns them off",
        default=None,
    )
    max_streams: int = doc("Concurrent live streams at most; more get 429", default=8)
    interval_s: float = doc("Seconds between live stream updates", default=5.0)
    url: str | None = doc(
        "Public URL of the live page (https://stats.example.com/live/), linked from the "
        "dashboard", default=None,
    )


@dataclass(frozen=True)
class Config:
    data_dir: Path = doc("Holds logs/, salts/, quarantine/ and footfall.duckdb",
                         default=Path("data"))
    site_dir: Path = doc("Where the static dashboard is written", default=Path("site"))
    sites: list[Site] = doc("The sites you track", default_factory=list)
    collector: Collector = doc("Beacon collector settings", default_factory=Collector)
    sessions: Sessions = doc("Sessionisation settings", default_factory=Sessions)
    funnels: list[Funnel] = doc("Conversion funnels", default_factory=list)
    experiments: list[Experiment] = doc("A/B experiments", default_factory=list)
    live: Live = doc("Live visitors on the collector", default_factory=Live)
    privacy: Privacy = doc("Small-count suppression in exports and the site",
                           default_factory=Privacy)
    pipeline: PipelineSettings = doc("Resources footfall run may use",
                                     default_factory=PipelineSettings)
    exports: Exports = doc("Where the exports go", default_factory=Exports)
    retention: Retention = doc("How long raw logs are kept", default_factory=Retention)
    report: Report = doc("The static dashboard", default_factory=Report)
    source: Path | None = field(default=None, metadata={"internal": True})

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def salts_dir(self) -> Path:
        return self.data_dir / "salts"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def database(self) -> Path:
        return self.data_dir / "footfall.duckdb"

    def site(self, domain: str) -> Site | None:
        return next((s for s in self.sites if s.domain == domain), None)


# --- loading -------------------------------------------------------------------------------


class _Loader:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def build(self, cls: type[Any], raw: Any, key: str) -> Any:
        if not isinstance(raw, dict):
            self.problem(key or "(top level)", f"expected a mapping, got {_kind(raw)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        for unknown in sorted(set(map(str, raw)) - set(fields)):
            close = _closest(unknown, fields)
            hint = f"; did you mean '{close}'?" if close else f"; known keys: {', '.join(fields)}"
            self.problem(_join(key, unknown), f"unknown key{hint}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            sub = _join(key, name)
            if name in raw:
                values[name] = self.convert(hints[name], raw[name], sub)
            elif isinstance(f.default, Path):  # defaults resolve against the config too
                values[name] = self.convert(Path, str(f.default), sub)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.problem(sub, f"is required ({f.metadata['doc']})")
                values[name] = None
        try:
            return cls(**{k: v for k, v in values.items() if v is not None or k in raw})
        except TypeError:
            return None

    def convert(self, tp: Any, raw: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (types.UnionType, typing.Union):
            if raw is None and type(None) in args:
                return None
            options = [a for a in args if a is not type(None)]
            if tp == PropValue or set(options) == {str, int, float, bool}:
                if isinstance(raw, str | int | float | bool):
                    return raw
                self.problem(key, f"expected a string, number or boolean, got {_kind(raw)}")
                return None
            return self.convert(options[0], raw, key)
        if origin is list:
            if not isinstance(raw, list):
                self.problem(key, f"expected a list, got {_kind(raw)}")
                return []
            return [self.convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(raw)]
        if origin is dict:
            if not isinstance(raw, dict):
                self.problem(key, f"expected a mapping, got {_kind(raw)}")
                return {}
            return {str(k): self.convert(args[1], v, f"{key}.{k}") for k, v in raw.items()}
        if dataclasses.is_dataclass(tp):
            return self.build(typing.cast(type[Any], tp), raw, key)
        if tp is Path:
            if not isinstance(raw, str) or not raw:
                self.problem(key, f"expected a path, got {_kind(raw)}")
                return None
            path = Path(raw).expanduser()
            return path if path.is_absolute() else (self.base / path)
        if tp is date:
            # YAML reads an unquoted 2026-03-01 as a date already; a quoted one is text
            if isinstance(raw, date) and not isinstance(raw, datetime):
                return raw
            if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                try:
                    return date.fromisoformat(raw)
                except ValueError:
                    pass
            self.problem(key, f"expected a date like 2026-03-01, got {_kind(raw)}")
            return None
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            self.problem(key, f"expected true or false, got {_kind(raw)}")
            return None
        if tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            self.problem(key, f"expected a whole number, got {_kind(raw)}")
            return None
        if tp is float:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return float(raw)
            self.problem(key, f"expected a number, got {_kind(raw)}")
            return None
        if tp is str:
            if isinstance(raw, str) and raw.strip():
                return raw
            self.problem(key, f"expected a non-empty string, got {_kind(raw)}")
            return None
        raise TypeError(f"unsupported config type {tp!r}")  # a schema bug, not a user error


def _kind(raw: Any) -> str:
    if raw is None:
        return "nothing"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    text = names.get(type(raw), type(raw).__name__)
    return f"{text} ({raw!r})" if isinstance(raw, int | float | str) else text


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _closest(name: str, known: typing.Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def _check(cfg: Config, problem: typing.Callable[[str, str], None]) -> None:
    """Rules that span keys or need more than a type."""
    if not cfg.sites:
        problem("sites", "add at least one site, e.g. [{domain: example.com, timezone: UTC}]")
    seen: set[str] = set()
    for i, site in enumerate(cfg.sites):
        if site is None:
            continue
        key = f"sites[{i}]"
        if site.domain and not _DOMAIN.match(site.domain):
            problem(f"{key}.domain", f"'{site.domain}' is not a bare lowercase host name "
                    "like example.com (no scheme, port or path)")
        if site.domain in seen:
            problem(f"{key}.domain", f"'{site.domain}' is listed twice; keep one entry")
        seen.add(site.domain)
        if site.timezone:
            try:
                zoneinfo.ZoneInfo(site.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problem(f"{key}.timezone", f"'{site.timezone}' is not an IANA time zone; "
                        "use e.g. Europe/Berlin or UTC")
    col = cfg.collector
    if col is not None:
        if isinstance(col.port, int) and not 0 <= col.port <= 65535:
            problem("collector.port",
                    f"{col.port} is out of range; use 1-65535 (0 picks a free port)")
        for i, cidr in enumerate(col.trusted_proxies or []):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except (ValueError, TypeError):
                problem(f"collector.trusted_proxies[{i}]",
                        f"'{cidr}' is not an IP network; use CIDR like 10.0.0.0/8 or 127.0.0.1/32")
        if isinstance(col.rotate_mb, int) and col.rotate_mb < 1:
            problem("collector.rotate_mb", "must be at least 1")
        if isinstance(col.fsync_interval_s, float) and col.fsync_interval_s < 0:
            problem("collector.fsync_interval_s", "must be 0 or more seconds")
        for key in ("body_timeout_s", "keepalive_s"):
            value = getattr(col, key)
            if isinstance(value, float) and not 0 < value <= 600:
                problem(f"collector.{key}", "must be more than 0 and at most 600 seconds")
        if isinstance(col.max_connections, int) and col.max_connections < 1:
            problem("collector.max_connections",
                    "must be at least 1; keep it below the process's open-file limit")
        if isinstance(col.rate_limit_per_min, int) and col.rate_limit_per_min < 0:
            problem("collector.rate_limit_per_min", "must be 0 (off) or more")
        if isinstance(col.workers, int) and not 0 <= col.workers <= 256:
            problem("collector.workers", "must be 0 (one per core) to 256")
        if col.geoip_database is not None and not col.geoip_database.is_file():
            problem("collector.geoip_database", f"no file at {col.geoip_database}; "
                    "point it at a GeoLite2-Country.mmdb or remove the key")
    if cfg.sessions is not None and isinstance(cfg.sessions.timeout_minutes, int) \
            and not 1 <= cfg.sessions.timeout_minutes <= 24 * 60:
        problem("sessions.timeout_minutes", "must be between 1 and 1440")
    if cfg.privacy is not None and isinstance(cfg.privacy.min_visitors, int) \
            and cfg.privacy.min_visitors < 0:
        problem("privacy.min_visitors", "must be 0 (off) or more")
    if cfg.pipeline is not None:
        if isinstance(cfg.pipeline.memory_limit, str) \
                and size_bytes(cfg.pipeline.memory_limit) is None:
            problem("pipeline.memory_limit",
                    f"'{cfg.pipeline.memory_limit}' is not a size; use e.g. 512MB or 2GB")
        if isinstance(cfg.pipeline.threads, int) and cfg.pipeline.threads < 0:
            problem("pipeline.threads", "must be 0 (every core) or more")
        if isinstance(cfg.pipeline.shards, int) and not 1 <= cfg.pipeline.shards <= MAX_SHARDS:
            problem("pipeline.shards", f"must be 1 (no sharding) to {MAX_SHARDS}")
        if isinstance(cfg.pipeline.executor, str) and cfg.pipeline.executor not in EXECUTORS:
            problem("pipeline.executor", f"'{cfg.pipeline.executor}' is not one of "
                    f"{', '.join(EXECUTORS)}")
        if cfg.pipeline.scheduler is not None and cfg.pipeline.executor != "dask":
            problem("pipeline.scheduler", "is only used with executor: dask; set that too "
                    "or remove the key")
        elif isinstance(cfg.pipeline.scheduler, str) \
                and not _SCHEDULER.fullmatch(cfg.pipeline.scheduler):
            problem("pipeline.scheduler", f"'{cfg.pipeline.scheduler}' is not a scheduler "
                    "address; use e.g. tcp://10.0.0.5:8786")
    if cfg.retention is not None and isinstance(cfg.retention.raw_days, int) \
            and cfg.retention.raw_days < 1:
        problem("retention.raw_days", "must be 1 or more (days of raw logs kept besides "
                "today); leave it out to keep them forever")
    if cfg.report is not None and isinstance(cfg.report.drilldown_rows, int) \
            and not 0 <= cfg.report.drilldown_rows <= 100:
        problem("report.drilldown_rows", "must be between 0 (off) and 100")
    names: set[tuple[str, str]] = set()
    for i, funnel in enumerate(cfg.funnels or []):
        if funnel is None:
            continue
        key = f"funnels[{i}]"
        if funnel.site and funnel.site not in seen:
            problem(f"{key}.site", f"'{funnel.site}' is not one of sites[].domain "
                    f"({', '.join(sorted(seen)) or 'none configured'})")
        if (funnel.site, funnel.name) in names:
            problem(f"{key}.name", f"funnel '{funnel.name}' is defined twice for {funnel.site}")
        names.add((funnel.site, funnel.name))
        if len(funnel.steps or []) < 2:
            problem(f"{key}.steps", "a funnel needs at least two steps")
        for j, step in enumerate(funnel.steps or []):
            if step is None:
                continue
            _check_match(f"{key}.steps[{j}]", step, problem)
    _check_experiments(cfg, seen, problem)
    if cfg.live is not None:
        if cfg.live.token is not None and len(cfg.live.token) < 16:
            problem("live.token", "use at least 16 characters, e.g. the output of "
                    "`python -c 'import secrets; print(secrets.token_urlsafe())'`")
        if isinstance(cfg.live.max_streams, int) and not 1 <= cfg.live.max_streams <= 1000:
            problem("live.max_streams", "must be between 1 and 1000")
        if isinstance(cfg.live.interval_s, float) and not 0.2 <= cfg.live.interval_s <= 60:
            problem("live.interval_s", "must be between 0.2 and 60 seconds")
        if cfg.live.url is not None and not re.match(r"https?://[^/\s]+/\S*$", cfg.live.url):
            problem("live.url", f"'{cfg.live.url}' is not an http(s) URL like "
                    "https://stats.example.com/live/")


def _check_match(key: str, step: FunnelStep | Goal,
                 problem: typing.Callable[[str, str], None]) -> None:
    """A funnel step or an experiment's goal: a page or a custom event, with its props."""
    if (step.path is None) == (step.event is None):
        problem(key, "give exactly one of 'path' (a page) or 'event' (a custom event)")
    if step.path is not None and not step.path.startswith("/"):
        problem(f"{key}.path", f"'{step.path}' must start with /")
    if step.props is not None and step.event is None:
        problem(f"{key}.props", "props only apply to an 'event'")


def _check_experiments(cfg: Config, sites: set[str],
                       problem: typing.Callable[[str, str], None]) -> None:
    names: set[tuple[str, str]] = set()
    for i, x in enumerate(cfg.experiments or []):
        if x is None:
            continue
        key = f"experiments[{i}]"
        if x.site and x.site not in sites:
            problem(f"{key}.site", f"'{x.site}' is not one of sites[].domain "
                    f"({', '.join(sorted(sites)) or 'none configured'})")
        if (x.site, x.name) in names:
            problem(f"{key}.name", f"experiment '{x.name}' is defined twice for {x.site}")
        names.add((x.site, x.name))
        if x.goal is not None:
            _check_match(f"{key}.goal", x.goal, problem)
        if x.start is not None and x.end is not None and x.end < x.start:
            problem(f"{key}.end", f"{x.end} is before start {x.start}")
        if x.weights is not None:
            if len(x.weights) < 2:
                problem(f"{key}.weights", "give a weight for each variant, at least two")
            if x.control not in x.weights:
                problem(f"{key}.weights", f"the control '{x.control}' needs a weight too")
            if any(w <= 0 for w in x.weights.values() if isinstance(w, float)):
                problem(f"{key}.weights", "every weight must be more than 0")


def parse(raw: Any, base: Path, source: str = "config") -> Config:
    """Build a Config from already-parsed YAML; relative paths resolve against `base`."""
    loader = _Loader(base)
    if raw is None:
        raw = {}
    cfg = loader.build(Config, raw, "")
    if cfg is not None:
        _check(cfg, loader.problem)
    if loader.problems or cfg is None:
        raise ConfigError(source, loader.problems or ["the config could not be read"])
    return typing.cast(Config, cfg)


def load(path: Path | str) -> Config:
    """Read and validate a config file, raising one ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found; pass --config PATH or create "
                                      "config.yaml (see docs/config.md)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [_yaml_problem(exc)]) from None
    cfg = parse(raw, path.resolve().parent, str(path))
    return dataclasses.replace(cfg, source=path.resolve())


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML broke, by line and column of the file (PyYAML names the text it was
    given `<unicode string>`, and spreads the spot over several lines with a caret)."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if context:
        what = f"{what} ({context})"
    if mark is None:
        return f"not valid YAML: {what}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"


def documented_keys() -> list[tuple[str, str, str]]:
    """(dotted key, type, description) for every key; docs/config.md is checked against it."""
    out: list[tuple[str, str, str]] = []

    def walk(cls: type[Any], prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            tp = hints[f.name]
            key = _join(prefix, f.name)
            out.append((key, _type_name(tp), f.metadata["doc"]))
            inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else tp
            if dataclasses.is_dataclass(inner):
                walk(typing.cast(type[Any], inner), key + ("[]" if inner is not tp else ""))

    walk(Config, "")
    return out


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return {"Path": "path", "date": "date", "str": "string", "int": "integer",
                "float": "number", "bool": "boolean"}.get(tp.__name__, "mapping")
    return str(tp).replace("typing.", "").replace("pathlib.Path", "path").replace(
        "footfall.config.", "")
