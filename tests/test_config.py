"""The config schema: every problem reported at once, every key documented."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from footfall import config
from footfall.errors import ConfigError

ROOT = Path(__file__).parent.parent


def problems_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    return info.value.problems


def test_shipped_config_loads() -> None:
    cfg = config.load(ROOT / "config.yaml")
    assert cfg.sites and cfg.data_dir == ROOT / "data"
    assert cfg.funnels and cfg.funnels[0].site in {s.domain for s in cfg.sites}


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems_of(
        """
sites:
  - {domain: "https://Example.com/", timezone: Mars/Olympus}
  - {domian: x.test}
collector: {port: "eighty", trusted_proxies: [10.0.0.0/8, not-a-net], rotate_mb: 0}
sessions: {timeout_minutes: -5}
funnels:
  - {name: f, site: nowhere.test, steps: [{name: a, path: pricing, event: e}]}
colector: {}
""",
        tmp_path,
    )
    expected = [
        "colector: unknown key; did you mean 'collector'?",
        "sites[1].domian: unknown key; did you mean 'domain'?",
        "sites[1].domain: is required",
        "collector.port: expected a whole number, got a string ('eighty')",
        "sites[0].domain: 'https://Example.com/' is not a bare lowercase host name",
        "sites[0].timezone: 'Mars/Olympus' is not an IANA time zone",
        "collector.trusted_proxies[1]: 'not-a-net' is not an IP network",
        "collector.rotate_mb: must be at least 1",
        "sessions.timeout_minutes: must be between 1 and 1440",
        "funnels[0].site: 'nowhere.test' is not one of sites[].domain",
        "funnels[0].steps: a funnel needs at least two steps",
        "funnels[0].steps[0]: give exactly one of 'path' (a page) or 'event'",
        "funnels[0].steps[0].path: 'pricing' must start with /",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in found), (want, found)
    assert len(found) == len(expected), found


def test_errors_name_the_fix(tmp_path: Path) -> None:
    (problem,) = problems_of("sites: [{domain: a.test, timezone: Berlin}]", tmp_path)
    assert "use e.g. Europe/Berlin" in problem


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.yaml")
    assert "not valid YAML" in problems_of("sites: [", tmp_path)[0]
    assert "add at least one site" in problems_of("{}", tmp_path)[0]
    assert "expected a mapping" in problems_of("- a list", tmp_path)[0]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "config.yaml"
    path.write_text(yaml.safe_dump({"data_dir": "d", "site_dir": "../s",
                                    "sites": [{"domain": "a.test"}]}))
    cfg = config.load(path)
    assert cfg.data_dir == tmp_path / "conf" / "d"
    assert cfg.site_dir.resolve() == tmp_path / "s"
    assert cfg.database == tmp_path / "conf" / "d" / "footfall.duckdb"
    assert cfg.sites[0].timezone == "UTC" and cfg.sessions.timeout_minutes == 30
    path.write_text(yaml.safe_dump({"sites": [{"domain": "a.test"}]}))
    defaults = config.load(path)
    assert defaults.data_dir == tmp_path / "conf" / "data"
    assert defaults.site_dir == tmp_path / "conf" / "site"


def test_every_key_is_documented_and_every_documented_key_exists() -> None:
    text = (ROOT / "docs" / "config.md").read_text()
    keys = {key for key, _type, _doc in config.documented_keys()}
    rows = set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", text, flags=re.M))
    assert keys - rows == set(), "docs/config.md has no table row for these keys"
    assert rows - keys == set(), "docs/config.md documents keys the schema does not have"


def test_cli_reports_config_problems_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("sites: [{domain: a.test, timezone: Nowhere/City}]\nextra: 1\n")
    res = subprocess.run([sys.executable, "-m", "footfall.cli", "collect", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "2 config problems" in res.stderr
    assert "Traceback" not in res.stderr


def test_every_command_has_help_with_an_example() -> None:
    from footfall.cli import COMMANDS

    for name in COMMANDS:
        res = subprocess.run([sys.executable, "-m", "footfall.cli", name, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert "example:" in res.stdout and f"footfall {name}" in res.stdout
