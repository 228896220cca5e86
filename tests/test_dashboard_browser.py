"""End to end: `rnnbench dashboard` on the shipped results, in a real headless Chromium.

Chromium comes from the distribution (Debian's ``chromium`` package; ``make test``
installs it) and is driven over the DevTools protocol with tornado's websocket client
(tornado ships with Streamlit), so nothing is downloaded. A fresh profile opens the
page at 1600x1000; the test records the seconds from navigation until the summary
table and the first chart are drawn (a benchmark for the README, not an assertion),
then opens every tab. Screenshots go to ``artifacts/``: ``dashboard.png`` (the first
screen) and ``dashboard-tab-<tab>.png``; timings to ``artifacts/dashboard-browser.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64decode
from pathlib import Path

import pytest

from dashboard.charts import CHARTS, TABS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")

WIDTH, HEIGHT = 1600, 1000  # the first screen the issue names
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-port=0"]
REFERENCE = ROOT / "results" / "reference"
# Counted in the page: drawn tables and Plotly charts in view, exceptions and error boxes, the text.
PAGE_STATE = """JSON.stringify({
  tables: Array.from(document.querySelectorAll('[data-testid="stDataFrame"] canvas'))
               .filter(c => c.offsetParent !== null).length,
  plots: Array.from(document.querySelectorAll('.js-plotly-plot'))
              .filter(p => p.offsetParent !== null && p.querySelector('svg.main-svg')).length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  errors: document.querySelectorAll('[data-testid="stAlertContentError"]').length,
  height: (document.querySelector('[data-testid="stMainBlockContainer"]') || document.body).scrollHeight,
  text: document.body.innerText})"""
TAB_CENTRE = """(() => {{ const tab = Array.from(document.querySelectorAll('[role="tab"]'))
    .find(t => t.innerText.trim() === {name}); if (!tab) return null;
    tab.scrollIntoView({{block: 'center'}}); const r = tab.getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class DevTools:
    """The few DevTools-protocol calls the test needs, over one page's websocket."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.last_id = 0

    async def call(self, method: str, **params):
        self.last_id += 1
        await self.connection.write_message(json.dumps({"id": self.last_id, "method": method,
                                                        "params": params}))
        while True:
            message = await self.connection.read_message()
            if message is None:
                raise AssertionError(f"chromium closed the DevTools connection during {method}")
            reply = json.loads(message)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


async def state_of(tools: DevTools) -> dict:
    return json.loads(await tools.evaluate(PAGE_STATE) or "{}")


async def wait_until(tools: DevTools, done, timeout: float) -> dict:
    """Poll the page until ``done(state)`` (or an exception shows, or ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = await state_of(tools)
        if state.get("exceptions") or done(state):
            break
        await asyncio.sleep(0.1)
    return state


async def screenshot(tools: DevTools, height: int) -> bytes:
    """The page at full width and ``height`` pixels (the window grows, then shrinks back)."""
    await tools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
                     deviceScaleFactor=1, mobile=False)
    await asyncio.sleep(1.5)  # let the charts redraw at the new size before the picture
    shot = await tools.call("Page.captureScreenshot", format="png")
    await tools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                     deviceScaleFactor=1, mobile=False)
    return b64decode(shot["data"])


async def visit(page_ws: str, browser_pid: int, url: str, timeout: float) -> tuple[dict, dict, dict]:
    """Open ``url`` as a first-time visitor would, time the first screen, then open every tab.

    Returns the seconds from navigation until the summary table and the first chart
    are drawn (and the browser's CPU seconds until then), each tab's page state, and
    the screenshots by name.
    """
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(page_ws, max_message_size=256 * 1024 * 1024)
    tools = DevTools(connection)
    try:
        await tools.call("Page.enable")
        cpu_before = cpu_seconds(browser_pid)
        start = time.monotonic()
        await tools.call("Page.navigate", url=url)
        seconds: dict = {}

        def first_screen(state: dict) -> bool:
            now = round(time.monotonic() - start, 2)
            if state.get("tables") and "summary" not in seconds:
                seconds["summary"] = now
            if state.get("plots") and "first_chart" not in seconds:
                seconds["first_chart"] = now
            return "summary" in seconds and "first_chart" in seconds

        states = {TABS[0]: await wait_until(tools, first_screen, timeout)}
        seconds["browser_cpu"] = round(cpu_seconds(browser_pid) - cpu_before, 2)
        await wait_until(tools, lambda s: s.get("plots", 0) >= charts_in(TABS[0]), timeout)
        shots = {"dashboard": await screenshot(tools, HEIGHT)}
        for tab in TABS:
            if tab != TABS[0]:
                await click(tools, tab)
            titles = [c.title for c in CHARTS if c.tab == tab]
            states[tab] = await wait_until(
                tools, lambda s, t=titles: s.get("plots", 0) == len(t) and all(x in s["text"] for x in t),
                timeout)
            height = min(max(HEIGHT, states[tab].get("height", 0) + 300), 6000)
            shots[f"dashboard-tab-{tab.lower().replace(' ', '-')}"] = await screenshot(tools, height)
        return seconds, states, shots
    finally:
        connection.close()


async def click(tools: DevTools, tab: str) -> None:
    """Click a tab as a person would (a real mouse press: the tabs listen to pointer events)."""
    centre = await tools.evaluate(TAB_CENTRE.format(name=json.dumps(tab)))
    assert centre, f"no tab {tab!r} in the page"
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        await tools.call("Input.dispatchMouseEvent", type=kind, x=centre[0], y=centre[1], button="left",
                         clickCount=1)
    await asyncio.sleep(0.5)


def charts_in(tab: str) -> int:
    return sum(c.tab == tab for c in CHARTS)


@pytest.fixture
def server(tmp_path):
    """`rnnbench dashboard` on a free port, serving the shipped reference results."""
    results = REFERENCE
    port = free_port()
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path}
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from rnnbench.cli import main; main()", "dashboard", str(results),
         "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True)
    try:
        url = process.stdout.readline().strip()  # printed once the server answers its health check
        assert url == f"http://localhost:{port}/", (url, (tmp_path / "server.log").read_text())
        wait_for(lambda: healthy(url), 30, "the health endpoint")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
        log.close()


@pytest.fixture
def chromium():
    """Headless Chromium with a fresh profile; yields its DevTools HTTP endpoint and process id."""
    profile = tempfile.mkdtemp(prefix="rnnbench-chromium-")
    process = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def endpoint():
            line = process.stderr.readline()
            match = re.search(r"DevTools listening on ws://([^/]+)/", line)
            if process.poll() is not None:
                raise AssertionError(f"chromium exited with {process.returncode}")
            return match and f"http://{match.group(1)}"
        yield wait_for(endpoint, 30, "chromium's DevTools endpoint"), process.pid
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children: how much work rendering took, however busy the machine."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def page_websocket(devtools: str) -> str:
    with urllib.request.urlopen(f"{devtools}/json/list", timeout=5) as response:
        pages = [t for t in json.load(response) if t.get("type") == "page"]
    return pages[0]["webSocketDebuggerUrl"]


def test_dashboard_first_screen_and_every_tab_in_chromium(server, chromium):
    devtools, browser_pid = chromium
    load = os.getloadavg()
    seconds, states, shots = asyncio.run(visit(page_websocket(devtools), browser_pid, server, timeout=60))

    ARTIFACTS.mkdir(exist_ok=True)
    for name, png in shots.items():
        (ARTIFACTS / f"{name}.png").write_bytes(png)
    (ARTIFACTS / "dashboard-browser.json").write_text(json.dumps(
        {"results": str(REFERENCE.relative_to(ROOT)), "window": [WIDTH, HEIGHT],
         "seconds_after_navigation": seconds,
         "charts_per_tab": {t: s.get("plots") for t, s in states.items()},
         "load_average_before": load, "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
         "cpu_model": cpu_model()}, indent=2))
    first = states[TABS[0]]
    assert all(png.startswith(b"\x89PNG") for png in shots.values())
    assert "summary" in seconds and "first_chart" in seconds, first.get("text", "")[:2000]
    assert "Summary" in first["text"] and "Loaded runs" not in first["text"]
    for tab, state in states.items():
        assert state.get("exceptions") == 0, (tab, state.get("text", "")[:2000])
        assert state.get("errors") == 0, (tab, state.get("text", "")[:2000])
        assert "Traceback" not in state["text"], tab
        assert state["plots"] == charts_in(tab), f"{tab}: {state['plots']} of {charts_in(tab)} charts drawn"
        for chart in CHARTS:
            if chart.tab == tab:
                assert chart.title in state["text"], (tab, chart.title)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"
