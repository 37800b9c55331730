"""Headless Debian Chromium driven over the DevTools protocol (websocket-client), network off.

Collects console messages, uncaught exceptions, log entries (CSP violations, failed loads)
and JavaScript dialogs of a page, evaluates expressions in it and takes screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    return next((p for c in CANDIDATES if (p := shutil.which(c))), None)


def require_chromium() -> str:
    """The browser's path; skip when it is missing outside CI, fail in CI (setup.sh installs it there)."""
    path = chromium_path()
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: scripts/setup.sh installs Debian's chromium (run it as root)")
    pytest.skip("chromium is not installed (apt-get install -y chromium, or bash scripts/setup.sh as root)")


class Browser:
    """One headless Chromium with one page; ``open(url)`` loads it and records what the page reported."""

    def __init__(self, profile: Path, width: int = 1200, height: int = 900):
        import websocket

        self.proc = subprocess.Popen(
            [require_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.is_file() and len(port_file.read_text().split()) >= 2:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            time.sleep(0.1)
        else:
            self.close()
            raise RuntimeError("chromium did not open its DevTools port in 60 s")
        port, path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._event(reply)

    def _event(self, event: dict[str, Any]) -> None:
        if "method" not in event:
            return  # the reply to a command sent without waiting (closing a dialog)
        self.events.append(event)
        if event["method"] == "Page.javascriptDialogOpening":  # never leave a dialog blocking the page
            self.ws.send(json.dumps({"id": next(self._ids), "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": True}, "sessionId": self.session}))

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict:
        return self._send(method, params, self.session)

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            self._event(json.loads(self.ws.recv()))
        self.evaluate("1")  # drain events queued during load

    def evaluate(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen since the last ``open``."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def dialogs(self) -> list[str]:
        return [e["params"].get("message", "") for e in self.events if e["method"] == "Page.javascriptDialogOpening"]

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params)["data"]))
        return path

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


#: JavaScript returning what the tests check: charts and their drawn size, funnel rows, sample texts.
PAGE_FACTS = """(() => {
  const charts = [...document.querySelectorAll('[data-chart]')].map(f => {
    const g = f.querySelector('svg, canvas');
    const r = g ? g.getBoundingClientRect() : {width: 0, height: 0};
    return {name: f.dataset.chart, kind: g ? g.tagName.toLowerCase() : null, width: r.width, height: r.height,
            marks: g ? g.querySelectorAll('rect, circle, polyline, path, line').length : 0};
  });
  const funnel = [...document.querySelectorAll('#funnel-table tr[data-stage]')].map(tr => ({
    name: tr.dataset.stage,
    rows_in: Number(tr.querySelector('[data-field=rows_in]').textContent),
    rows_out: Number(tr.querySelector('[data-field=rows_out]').textContent),
    failures: Object.fromEntries([...tr.querySelectorAll('[data-reason]')].map(
      s => [s.dataset.reason, Number(s.querySelector('b').textContent)])),
  }));
  const sweep = [...document.querySelectorAll('#sweep-table tr[data-run]')].map(tr => ({
    run: tr.dataset.run,
    values: Object.fromEntries([...tr.querySelectorAll('[data-field]')].map(td => [td.dataset.field, td.textContent])),
    stages: Object.fromEntries([...tr.querySelectorAll('[data-stage]')].map(td => [td.dataset.stage, td.textContent])),
  }));
  return {title: document.title, charts, funnel, sweep,
          scripts: document.querySelectorAll('script').length,
          text: document.body.innerText,
          images: document.querySelectorAll('img').length,
          rows_final: (document.querySelector('[data-field=rows_final]') || {}).textContent};
})()"""
