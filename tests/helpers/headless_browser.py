"""A headless Chromium driven over the DevTools protocol (a websocket; ``websocket-client``):
load a page, collect its console errors, exceptions and network requests, evaluate
JavaScript, take a screenshot.

Only the system's Chromium is used (Debian's ``chromium`` package: ``tox -e browser`` installs
it); nothing is downloaded. :func:`chromium_path` says where it is, or None.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

#: Flags for a headless run as root, with nothing started that talks to the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--remote-debugging-port=0"]
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    """The Chromium executable (``KVLRP_CHROMIUM``, ``/usr/bin/chromium`` or one on the PATH),
    None where there is none."""
    for candidate in (os.environ.get("KVLRP_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class HeadlessChromium:
    """One Chromium process with one page; use as a context manager."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900,
                 timeout: float = 60.0) -> None:
        self.executable, self.width, self.height, self.timeout = executable, width, height, timeout
        self.events: list[dict[str, Any]] = []
        self._id = 0

    # --- process and connection ---
    def __enter__(self) -> HeadlessChromium:
        import websocket

        self._profile = tempfile.TemporaryDirectory(prefix="kvlrp-chromium-")
        self._proc = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = self._devtools_url()
        self._ws = websocket.create_connection(url, timeout=self.timeout, suppress_origin=True)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target,
                                  flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", session=True, width=self.width,
                  height=self.height, deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._ws.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._profile.cleanup()

    def _devtools_url(self) -> str:
        """The browser's websocket address, from the line Chromium prints on start-up."""
        seen = []
        deadline = time.monotonic() + self.timeout
        assert self._proc.stderr is not None
        while time.monotonic() < deadline:
            line = self._proc.stderr.readline()
            if not line and self._proc.poll() is not None:
                break
            seen.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        raise RuntimeError("Chromium did not start its DevTools server:\n" + "\n".join(seen))

    # --- protocol ---
    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        """Call ``method`` (on the page with ``session``) and wait for its result; events that
        arrive meanwhile are kept in :attr:`events`."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next event ``method`` (or one already received since the last wait)."""
        for k, event in enumerate(self.events):
            if event.get("method") == method and not event.get("_seen"):
                self.events[k]["_seen"] = True
                return event
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            event = json.loads(self._ws.recv())
            self.events.append(event)
            if event.get("method") == method:
                event["_seen"] = True
                return event
        raise TimeoutError(f"no {method} within {self.timeout} s")

    # --- what a test asks for ---
    def load(self, url: str) -> None:
        """Navigate to ``url`` and wait until its load event has fired."""
        self.send("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions and error log entries so far."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error",
                                                                               "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                       for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return errors

    def requested_urls(self) -> list[str]:
        """Every URL the page asked the network stack for."""
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the whole page (not only the window) written to ``path``."""
        metrics = self.send("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", session=True, format="png", clip=clip,
                         captureBeyondViewport=True)
        path = Path(path)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
