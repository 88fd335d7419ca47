"""Plausible's two official npm trackers, pinned in tests/clients/package-lock.json, in real
headless Chromium against the real collector process: the exact log lines they produce.

- `@plausible-analytics/tracker` 0.4.6: `init({endpoint})`, JSON props, revenue, engagement.
- `plausible-tracker` 0.3.9: `Plausible({apiHost})`, props sent as a JSON *string*.

Pages are served from `site.test` and the collector is `stats.test`, both mapped to loopback
by the `browser` fixture. The packages are ES modules loaded straight from node_modules; the
file server adds the `.js` that plausible-tracker's relative imports leave out.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import IN_CI, read_lines

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIENTS = Path(__file__).parent / "clients"
PINS = {"@plausible-analytics/tracker": "0.4.6", "plausible-tracker": "0.3.9"}

# What the collector derives for every line from the browser fixture's user agent.
AGENT = {"v": 1, "site": "example.com", "hostname": "site.test", "browser": "Chrome",
         "browser_version": "124", "os": "Windows", "os_version": "10", "device": "desktop"}


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The pinned packages; `npm ci` installs them from the lock file when they are missing."""
    modules = CLIENTS / "node_modules"
    if not all((modules / name / "package.json").is_file() for name in PINS):
        npm = shutil.which("npm")
        if npm is None:
            if IN_CI:
                pytest.fail("npm not found: .ci/run must provide node and npm")
            pytest.skip("npm not found: cannot install Plausible's trackers")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENTS,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"npm ci in tests/clients failed:\n{done.stderr[-2000:]}")
    for name, version in PINS.items():
        installed = json.loads((modules / name / "package.json").read_text())["version"]
        assert installed == version, f"{name} {installed} installed, {version} pinned"
    return modules


class _Handler(http.server.SimpleHTTPRequestHandler):
    modules: Path

    def translate_path(self, path: str) -> str:
        if path.startswith("/node_modules/"):
            target = self.modules / path.split("?", 1)[0].removeprefix("/node_modules/")
            if not target.suffix:
                target = target.with_suffix(".js")  # `import './lib/tracker'` in 0.3.9
            return str(target)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pages(tmp_path: Path, node_modules: Path) -> Iterator[Callable[[str, str], str]]:
    """`put(name, html)` publishes a page on site.test and returns its URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"modules": node_modules})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def put(name: str, html: str) -> str:
        (root / name).write_text(html, encoding="utf-8")
        return f"http://site.test:{port}/{name}"

    put.port = port  # type: ignore[attr-defined]
    yield put
    server.shutdown()
    server.server_close()


def wait_for(data_dir: Path, count: int, keep: Callable[[dict[str, Any]], bool] = lambda _: True,
             timeout: float = 10.0) -> list[dict[str, Any]]:
    """The stored lines `keep` selects, once there are `count` of them (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in read_lines(data_dir) if keep(line)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def not_engagement(line: dict[str, Any]) -> bool:
    return bool(line["name"] != "engagement")


def exact(line: dict[str, Any]) -> dict[str, Any]:
    """The line without the parts that differ per run, after checking their shape."""
    line = dict(line)
    assert len(line.pop("id")) == 36 and len(line.pop("visitor")) == 16
    assert line.pop("ts").endswith("Z")
    return line


NEW_TRACKER = """<!doctype html><html><head><title>t</title></head>
<body style="margin:0"><div style="height:4000px">
<a id="out" href="http://elsewhere.test/away?ref=mail#top">away</a>
<a id="pdf" href="/files/guide.pdf?download=1">guide</a>
</div>
<script>
  // Keep the test on this page: the trackers see the click, the browser stays.
  addEventListener('click', (e) => e.target.closest('a') && e.preventDefault(), true)
</script>
<script type="module">
  import { init, track } from '/node_modules/@plausible-analytics/tracker/plausible.js'
  init({domain: 'example.com', endpoint: '{endpoint}', outboundLinks: true,
        fileDownloads: true, hashBasedRouting: {hash}})
  window.track = track
</script></body></html>
"""


def test_new_tracker_pageviews_spa_events_revenue_links_and_engagement(
    browser: Any, collector_process: Any, pages: Any, tmp_path: Path
) -> None:
    collector = collector_process()
    url = pages("index.html", NEW_TRACKER.replace("{endpoint}", f"http://stats.test:"
                f"{collector.port}/api/event").replace("{hash}", "false"))
    data = tmp_path / "data"
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "?utm_source=newsletter")
    wait_for(data, 1, not_engagement)
    page.mouse.wheel(0, 1500)
    page.wait_for_function("scrollY > 0")
    page.evaluate("history.pushState({}, '', '/pricing')")
    wait_for(data, 2, not_engagement)
    steps = [
        "track('Signup', {props: {plan: 'pro', seats: 3, annual: true, none: null}})",
        "track('Purchase', {revenue: {amount: 19.99, currency: 'EUR'}, interactive: false})",
        "document.querySelector('#out').click()",
        "document.querySelector('#pdf').click()",
    ]
    for n, step in enumerate(steps, start=3):
        page.evaluate(step)
        wait_for(data, n, not_engagement)
    page.close()
    wait_for(data, 1, lambda line: line["name"] == "engagement" and line["path"] == "/pricing")
    time.sleep(0.5)
    lines = read_lines(data)
    context.close()

    assert [exact(line) for line in lines if not_engagement(line)] == [
        {**AGENT, "name": "pageview", "path": "/index.html", "source": "newsletter",
         "utm_source": "newsletter"},
        {**AGENT, "name": "pageview", "path": "/pricing"},
        # A null prop is dropped, not the event; numbers and booleans keep their JSON type.
        {**AGENT, "name": "Signup", "path": "/pricing",
         "props": {"plan": "pro", "seats": 3, "annual": True}},
        {**AGENT, "name": "Purchase", "path": "/pricing", "interactive": False,
         "revenue_amount": "19.99", "revenue_currency": "EUR"},
        {**AGENT, "name": "Outbound Link: Click", "path": "/pricing",
         "props": {"url": "http://elsewhere.test/away?ref=mail#top"}},
        {**AGENT, "name": "File Download", "path": "/pricing",
         "props": {"url": f"http://site.test:{pages.port}/files/guide.pdf"}},
    ]
    engagements = [exact(line) for line in lines if not not_engagement(line)]
    assert {line["path"] for line in engagements} == {"/index.html", "/pricing"}
    for line in engagements:
        measures = {k: line.pop(k, None) for k in ("engaged_ms", "scroll_pct")}
        assert measures["scroll_pct"] is not None and 0 <= measures["scroll_pct"] <= 100
        assert measures["engaged_ms"] is not None and measures["engaged_ms"] >= 0
        # The tracker repeats the pageview's props on its engagement events (none here).
        expected = {**AGENT, "name": "engagement", "path": line["path"], "interactive": False}
        if line["path"] == "/index.html":
            expected |= {"source": "newsletter", "utm_source": "newsletter"}
        assert line == expected


HASH_PAGE_NEW = """<!doctype html><html><head><title>t</title></head><body>
<script type="module">
  import { init } from '/node_modules/@plausible-analytics/tracker/plausible.js'
  init({domain: 'example.com', endpoint: '{endpoint}', hashBasedRouting: {hash}})
</script></body></html>
"""

HASH_PAGE_OLD = """<!doctype html><html><head><title>t</title></head><body>
<script type="module">
  import Plausible from '/node_modules/plausible-tracker/build/module/index.js'
  Plausible({domain: 'example.com', apiHost: '{api}', hashMode: {hash}}).enableAutoPageviews()
</script></body></html>
"""


@pytest.mark.parametrize("package", ["@plausible-analytics/tracker", "plausible-tracker"])
@pytest.mark.parametrize("hash_mode", [True, False])
def test_hash_routes_with_and_without_hash_mode(
    browser: Any, collector_process: Any, pages: Any, tmp_path: Path, package: str,
    hash_mode: bool
) -> None:
    collector = collector_process()
    api = f"http://stats.test:{collector.port}"
    template = HASH_PAGE_NEW if package.startswith("@") else HASH_PAGE_OLD
    html = template.replace("{endpoint}", api + "/api/event").replace("{api}", api)
    url = pages("app.html", html.replace("{hash}", "true" if hash_mode else "false"))
    data = tmp_path / "data"
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "#/home")
    wait_for(data, 1, not_engagement)
    page.evaluate("location.hash = '#/settings'")
    # A hash change also fires popstate, which plausible-tracker 0.3 counts as a navigation
    # whatever the mode, so in hash mode it reports the new route twice (as Plausible
    # would store it). The new tracker listens to hashchange only, and only in hash mode.
    old = package == "plausible-tracker"
    if hash_mode:
        expected = ["/app.html#/home", "/app.html#/settings"] + ["/app.html#/settings"] * old
    else:
        # Without hash mode Plausible drops the fragment, and so does footfall.
        expected = ["/app.html"] + ["/app.html"] * old
    wait_for(data, len(expected), not_engagement)
    time.sleep(0.5)  # and nothing more arrives
    page.close()
    context.close()
    lines = [line for line in read_lines(data) if not_engagement(line)]
    assert [line["path"] for line in lines] == expected


OLD_TRACKER = """<!doctype html><html><head><title>t</title></head><body>
<a id="out" href="http://elsewhere.test:{port}/away.html?ref=mail">away</a>
<script type="module">
  import Plausible from '/node_modules/plausible-tracker/build/module/index.js'
  const plausible = Plausible({domain: 'example.com', apiHost: '{api}'})
  plausible.enableAutoPageviews()
  plausible.enableAutoOutboundTracking()
  window.plausible = plausible
</script></body></html>
"""


def test_old_tracker_sends_props_as_json_text_and_loses_none_of_them(
    browser: Any, collector_process: Any, pages: Any, tmp_path: Path
) -> None:
    collector = collector_process()
    pages("away.html", "<!doctype html><p>away</p>")
    url = pages("index.html", OLD_TRACKER.replace("{api}", f"http://stats.test:{collector.port}")
                .replace("{port}", str(pages.port)))
    data = tmp_path / "data"
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    wait_for(data, 1)
    page.evaluate("history.pushState({}, '', '/pricing')")
    wait_for(data, 2)
    page.evaluate("plausible.trackEvent('Signup', {props: {plan: 'pro', seats: 3, ok: true}})")
    wait_for(data, 3)
    page.evaluate("plausible.trackEvent('Empty', {props: {gone: null, blank: ''}})")
    wait_for(data, 4)
    # The tracker cancels the click, sends the event, then navigates itself after 150 ms.
    page.click("#out")
    page.wait_for_url("**/away.html?ref=mail")
    lines = wait_for(data, 5)
    context.close()

    width = {"screen_width": 1280}  # window.innerWidth of the default viewport
    assert [exact(line) for line in lines] == [
        {**AGENT, **width, "name": "pageview", "path": "/index.html"},
        {**AGENT, **width, "name": "pageview", "path": "/pricing"},
        {**AGENT, **width, "name": "Signup", "path": "/pricing",
         "props": {"plan": "pro", "seats": 3, "ok": True}},
        {**AGENT, **width, "name": "Empty", "path": "/pricing"},
        {**AGENT, **width, "name": "Outbound Link: Click", "path": "/pricing",
         "props": {"url": f"http://elsewhere.test:{pages.port}/away.html?ref=mail"}},
    ]


def test_the_pins_are_committed_with_a_lock_file() -> None:
    manifest = json.loads((CLIENTS / "package.json").read_text())
    lock = json.loads((CLIENTS / "package-lock.json").read_text())
    assert manifest["dependencies"] == PINS
    for name, version in PINS.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
