"""docs/deploy.md against the code it describes: config keys, YAML examples, log file names,
the stop timeout, and the files it names."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from collector import server
from collector.logwriter import LogWriter
from footfall import config
from tests.helpers import Clock

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
SECTIONS = {key.split(".")[0].split("[")[0] for key, _, _ in config.documented_keys()}


def test_every_config_key_the_page_mentions_exists() -> None:
    keys = {key for key, _, _ in config.documented_keys()}
    mentioned = {m for m in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)", DOC)
                 if m.split(".")[0] in SECTIONS}
    assert {"collector.trusted_proxies", "collector.workers"} <= mentioned
    assert mentioned - keys == set(), "docs/deploy.md names config keys the schema lacks"


def test_every_yaml_example_is_a_valid_config(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    assert blocks
    for i, block in enumerate(blocks):
        assert isinstance(yaml.safe_load(block), dict)
        path = tmp_path / f"example-{i}.yaml"
        path.write_text(block)
        config.load(path)  # raises, listing every problem, when a key or value is wrong


def test_log_file_names_are_as_the_page_says(tmp_path: Path) -> None:
    pattern = re.search(r"`logs/YYYY/MM/DD/<host>-<pid>-<HHMMSS>-<seq>\.jsonl`", DOC)
    assert pattern, "the page no longer shows the log file name pattern"
    writer = LogWriter(tmp_path / "logs", Clock(), rotate_bytes=1 << 20, fsync_interval_s=1.0)
    writer.append(b"{}\n")
    writer.close()
    assert writer.path is not None
    relative = writer.path.relative_to(tmp_path).as_posix()
    assert re.fullmatch(rf"logs/\d{{4}}/\d{{2}}/\d{{2}}/[A-Za-z0-9-]+-{os.getpid()}"
                        r"-\d{6}-\d{4}\.jsonl", relative), relative


def test_the_stop_timeout_outlasts_the_workers_drain() -> None:
    parent_wait = server.SHUTDOWN_S + 5  # _supervise's deadline
    assert f"up to {parent_wait:g} s for its workers ({server.SHUTDOWN_S:g} s of drain" in DOC
    (timeout,) = re.findall(r"^TimeoutStopSec=(\d+)$", DOC, re.M)
    assert int(timeout) > parent_wait


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:collector|pipeline|footfall|tests|bench)(?:/[\w.-]+)+)`", DOC))
    assert named
    for path in named:
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}"
