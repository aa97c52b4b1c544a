"""The HTML report in a real browser: Debian's headless chromium, driven over the
DevTools protocol on a pipe (no network port, no extra Python packages).

Checks: the page loads with no console errors, no exceptions and no blocked requests;
every figure image decodes; a screenshot of each figure is not blank; the findings table
sorts and filters with its own JavaScript; the page names UNLOCK_WHILE_USER_MAPPED.

Chromium is a prerequisite outside pip (README, "Set up"). Without it these tests are
skipped with a one-line reason, unless the environment variable CI is set (``.ci/run``,
CI services): then a missing chromium fails.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[1]

SEED = ROOT / "sample_traces" / "seed_unlock_from_worker.csv"

# Run chromium with its DevTools pipe on fds 3 (commands in) and 4 (replies out).
_EXEC_WITH_PIPE = (
    "import os, sys\n"
    "os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4)\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, chromium: str, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-extensions",
            "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe", "--hide-scrollbars", "about:blank",
        ]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_WITH_PIPE, str(to_chrome_r), str(from_chrome_w),
             *args],
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from chromium")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe: "
                                       + self.proc.stderr.read().decode(errors="replace")[-2000:])
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        """Send a command and return its result (events seen meanwhile are kept)."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        """Wait for an event (or return one already received)."""
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            self.events.append(msg)
            if msg.get("method") == method:
                return msg

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        self.proc.stderr.close()


def _problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and failed/blocked loads among the events."""
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.exceptionThrown":
            out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + json.dumps(p.get("args", []))[:500])
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append("log: " + p["entry"].get("text", "")[:500])
        elif m == "Network.loadingFailed":
            out.append("load failed: " + json.dumps(p)[:500])
    return out


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from traceanalyzer.cli.main import main

    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(SEED), "-o", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def page(report_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    if CHROMIUM is None:
        message = ("chromium is not installed (Debian/Ubuntu: sudo apt-get install chromium; "
                   "see README, Set up)")
        if os.environ.get("CI"):
            pytest.fail(f"{message}; the browser test is required when CI is set")
        pytest.skip(message)
    cdp = DevTools(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Emulation.setDeviceMetricsOverride",
                 {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
                 session=session)
        cdp.send("Page.navigate", {"url": (report_dir / "report.html").as_uri()},
                 session=session)
        cdp.wait_event("Page.loadEventFired")
        yield cdp, session
    finally:
        cdp.close()


def _eval(cdp: DevTools, session: str, expr: str):
    res = cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                        "awaitPromise": True}, session=session)
    assert "exceptionDetails" not in res, res
    return res["result"].get("value")


def test_report_command_writes_the_four_files(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.html", "summary.json", "leak_timeline.png", "hazard_timeline.png"} <= names
    summary = json.loads((report_dir / "summary.json").read_text())
    assert "UNLOCK_WHILE_USER_MAPPED" in {f["rule"] for f in summary["findings"]}
    for png in ("leak_timeline.png", "hazard_timeline.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_loads_without_errors_and_images_decode(page) -> None:
    cdp, session = page
    # Let late console messages and image decodes arrive.
    assert _eval(cdp, session, "Promise.all(Array.from(document.images).map("
                 "i => i.decode().then(() => true, () => false))).then(r => r.every(x => x))")
    sizes = _eval(cdp, session, "Array.from(document.images).map(i => [i.naturalWidth,"
                  " i.naturalHeight])")
    assert len(sizes) == 3 and all(w > 400 and h > 150 for w, h in sizes), sizes
    assert _problems(cdp.events) == []
    # nothing but the page itself and its embedded data: URIs was requested
    urls = [ev["params"]["request"]["url"] for ev in cdp.events
            if ev.get("method") == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(("file:", "data:")) for u in urls), urls
    text = _eval(cdp, session, "document.body.innerText")
    assert "UNLOCK_WHILE_USER_MAPPED" in text
    assert "Leak timeline" in text and "Hazard timeline" in text


def _screenshot(cdp: DevTools, session: str, clip: dict) -> np.ndarray:
    import matplotlib.image as mpimg

    shot = cdp.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {**clip, "scale": 1}}, session=session)
    return mpimg.imread(io.BytesIO(base64.b64decode(shot["data"])), format="png")


def test_screenshot_shows_the_figures(page, tmp_path: Path) -> None:
    cdp, session = page
    for fig_id in ("fig-leak_timeline", "fig-hazard_timeline"):
        rect = _eval(cdp, session, f"(() => {{ const r = document.querySelector('#{fig_id} img')"
                     ".getBoundingClientRect(); return {x: r.x + window.scrollX, "
                     "y: r.y + window.scrollY, width: r.width, height: r.height}; })()")
        assert rect["width"] > 400 and rect["height"] > 150, rect
        pixels = _screenshot(cdp, session, rect)[..., :3]
        # A figure has ink: many distinct colours and clear contrast, not a blank box.
        assert pixels.std() > 0.08, (fig_id, pixels.std())
        dark = (pixels.mean(axis=2) < 0.5).mean()
        assert 0.005 < dark < 0.5, (fig_id, dark)
        colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50, (fig_id, len(colours))
    whole = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)
    (tmp_path / "report_top.png").write_bytes(base64.b64decode(whole["data"]))


def test_findings_table_sorts_and_filters(page) -> None:
    cdp, session = page
    rows = "Array.from(document.querySelectorAll('#findings tbody.finding'))"
    n = _eval(cdp, session, f"{rows}.length")
    assert n >= 2
    # Sort by time, ascending: the data-v values must come out in order.
    times = _eval(cdp, session, "(() => { const th = Array.from(document.querySelectorAll("
                  "'#findings th')).find(t => t.dataset.key === 'time'); th.click(); return "
                  f"{rows}.map(b => parseFloat(b.rows[0].cells[3].dataset.v)); }})()")
    assert times == sorted(times)
    times_desc = _eval(cdp, session, "(() => { const th = Array.from(document.querySelectorAll("
                       "'#findings th')).find(t => t.dataset.key === 'time'); th.click(); "
                       f"return {rows}.map(b => parseFloat(b.rows[0].cells[3].dataset.v)); }})()")
    assert times_desc == sorted(times_desc, reverse=True)
    # Filter by rule text: only matching rows stay visible, and the counter says so.
    visible = _eval(cdp, session, "(() => { const i = document.getElementById('f-text'); "
                    "i.value = 'unlock_while'; i.dispatchEvent(new Event('input')); return "
                    f"{rows}.filter(b => !b.hidden).map(b => b.dataset.rule); }})()")
    assert visible and set(visible) == {"UNLOCK_WHILE_USER_MAPPED"}
    counter = _eval(cdp, session, "document.getElementById('f-count').textContent")
    assert counter.startswith(f"{len(visible)} of {n}")
    # Clicking a row opens its details: explanation, evidence and what to do.
    detail = _eval(cdp, session, f"(() => {{ const b = {rows}.find(b => !b.hidden); "
                   "b.rows[0].click(); return b.rows[1].hidden ? null : b.rows[1].innerText; })()")
    assert detail and "Why it matters" in detail and "What to do" in detail
    assert "Evidence events" in detail and "MmUnlockPages" in detail
    _eval(cdp, session, "(() => { const i = document.getElementById('f-text'); i.value = '';"
          " i.dispatchEvent(new Event('input')); })()")
    assert _eval(cdp, session, f"{rows}.filter(b => !b.hidden).length") == n
    assert _problems(cdp.events) == []


def test_interactive_timeline_renders_with_hover_data_and_linked_zoom(page) -> None:
    """Bokeh runs from the embedded JS (no request), draws both plots, carries each
    finding's hover fields, and zooming one plot's time axis moves the other."""
    cdp, session = page
    assert _eval(cdp, session, "typeof Bokeh") == "object"
    doc = "Bokeh.documents[0]"
    assert _eval(cdp, session, f"{doc}.roots().length") == 1
    data = _eval(cdp, session, f"(() => {{ const d = {doc}.get_model_by_name('findings').data;"
                 " return {rule: Array.from(d.rule), mdl: Array.from(d.mdl),"
                 " caller: Array.from(d.caller), process: Array.from(d.process)}; })()")
    assert "UNLOCK_WHILE_USER_MAPPED" in data["rule"]
    assert "0xffffc30a4b2f1000" in data["mdl"] and "app.exe (1234)" in data["process"]
    # both plots drew a canvas (Bokeh renders into shadow roots)
    canvases = _eval(cdp, session, "(() => { const walk = r => Array.from(r.querySelectorAll"
                     "('*')).reduce((n, e) => n + (e.tagName === 'CANVAS' ? 1 : 0) + (e.shadowRoot"
                     " ? walk(e.shadowRoot) : 0), 0); return walk(document); })()")
    assert canvases >= 2
    linked = _eval(cdp, session, f"(() => {{ const h = {doc}.get_model_by_name('hazards');"
                   f" const m = {doc}.get_model_by_name('memory');"
                   " h.x_range.setv({start: 1, end: 2});"
                   " return [m.x_range.start, m.x_range.end, h.x_range === m.x_range]; })()")
    assert linked == [1, 2, True]
    assert _problems(cdp.events) == []
