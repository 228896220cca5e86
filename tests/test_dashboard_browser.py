"""End to end: `rnnbench dashboard` served, loaded in a real headless Chromium, charts rendered.

Chromium comes from the distribution (Debian's ``chromium`` package; ``.ci/run``
installs it) and is driven over the DevTools protocol with tornado's websocket client
(tornado ships with Streamlit), so nothing is downloaded. The screenshot is kept as a
CI artifact in ``artifacts/dashboard.png``, with the render time in
``artifacts/dashboard-browser.json``.
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

from dashboard.charts import CHARTS

from .fixtures_results import write_results

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000", "--remote-debugging-port=0"]
# Counted in the page: rendered Plotly charts, Streamlit exceptions and error boxes, the page text.
SCREENSHOT_HEIGHT = 9000  # the whole page, every chart
PAGE_STATE = """JSON.stringify({
  plots: Array.from(document.querySelectorAll('.js-plotly-plot'))
              .filter(p => p.querySelector('svg.main-svg')).length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  errors: document.querySelectorAll('[data-testid="stAlertContentError"]').length,
  running: document.querySelectorAll('[data-testid="stStatusWidget"]').length,
  text: document.body.innerText})"""


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


async def render(page_ws: str, browser_pid: int, url: str, expected_plots: int,
                 timeout: float) -> tuple[dict, dict, bytes]:
    """Open ``url`` as a visitor would (1400x1000 window) and wait until every chart is drawn.

    Returns the page state, the seconds from navigation to the first and to the last
    chart (and the browser's CPU seconds until then), and a screenshot of the whole page
    (taken after the timing, in a tall window).
    """
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(page_ws, max_message_size=256 * 1024 * 1024)
    tools = DevTools(connection)
    try:
        await tools.call("Page.enable")
        cpu_before = cpu_seconds(browser_pid)
        start = time.monotonic()
        await tools.call("Page.navigate", url=url)
        state: dict = {}
        seconds: dict = {}
        while time.monotonic() - start < timeout:
            state = json.loads(await tools.evaluate(PAGE_STATE) or "{}")
            if state.get("plots") and "first_chart" not in seconds:
                seconds["first_chart"] = round(time.monotonic() - start, 2)
            if state.get("exceptions") or state.get("plots", 0) >= expected_plots:
                break
            await asyncio.sleep(0.2)
        seconds["all_charts"] = round(time.monotonic() - start, 2)
        seconds["browser_cpu"] = round(cpu_seconds(browser_pid) - cpu_before, 2)
        await tools.call("Emulation.setDeviceMetricsOverride", width=1400, height=SCREENSHOT_HEIGHT,
                         deviceScaleFactor=1, mobile=False)
        await asyncio.sleep(2.0)  # let the charts redraw at the new size before the picture
        shot = await tools.call("Page.captureScreenshot", format="png")
        return state, seconds, b64decode(shot["data"])
    finally:
        connection.close()


@pytest.fixture
def server(tmp_path):
    """`rnnbench dashboard` on a free port, serving a synthetic results file of every kind."""
    results = tmp_path / "results"
    results.mkdir()
    write_results(results / "synthetic.parquet")
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


def test_dashboard_renders_every_chart_in_chromium(server, chromium):
    devtools, browser_pid = chromium
    state, seconds, png = asyncio.run(render(page_websocket(devtools), browser_pid, server, len(CHARTS),
                                             timeout=120))

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)
    (ARTIFACTS / "dashboard-browser.json").write_text(json.dumps(
        {"charts_rendered": state.get("plots"), "seconds_after_navigation": seconds,
         "load_average": os.getloadavg(), "cpus": os.cpu_count()}, indent=2))
    assert png.startswith(b"\x89PNG")
    assert state.get("exceptions") == 0, state.get("text", "")[:2000]
    assert state.get("errors") == 0, state.get("text", "")[:2000]
    assert "Traceback" not in state["text"]
    assert state["plots"] == len(CHARTS), f"{state['plots']} of {len(CHARTS)} charts rendered"
    for chart in CHARTS:
        assert chart.title in state["text"]
    assert "Loaded runs (1)" in state["text"]
