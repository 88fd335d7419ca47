"""Fixtures that build real parts: configs on disk, the collector as a process, Chromium.

Plain helpers live in tests/helpers.py; tests import them from there, never from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from footfall import config as config_mod
from footfall.config import Config
from footfall.demo import free_port
from tests.helpers import CHROME_UA, CHROMIUM, IN_CI, CollectorProcess, write_config


@pytest.fixture
def make_config(tmp_path: Path) -> Any:
    def make(**overrides: Any) -> Config:
        return config_mod.load(write_config(tmp_path, **overrides))

    return make


@pytest.fixture
def config(make_config: Any) -> Config:
    return make_config()  # type: ignore[no-any-return]


@pytest.fixture
def collector_process(tmp_path: Path) -> Iterator[Any]:
    started: list[CollectorProcess] = []

    def start(**overrides: Any) -> CollectorProcess:
        proc = CollectorProcess(write_config(tmp_path, **overrides), free_port())
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Real headless Chromium. In CI a missing browser fails the test instead of skipping.

    Beacons sent while a page unloads ignore Playwright's per-context user agent and carry
    `HeadlessChrome`, which the collector drops, so the browser's own UA is set here.
    """
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run must install it")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync",
                  "--host-resolver-rules=MAP *.test 127.0.0.1",
                  "--disable-blink-features=AutomationControlled",
                  f"--user-agent={CHROME_UA}"],
        )
        yield b
        b.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test fails the run: every test there must really run."""
    if not IN_CI or exitstatus != pytest.ExitCode.OK:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        for report in skipped:
            reporter.write_line(f"skipped in CI: {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
