"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe.

Chromium reads commands from fd 3 and writes replies/events to fd 4, each a JSON
message ended by a NUL byte; no port is opened and no extra package is needed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "Chromium", "PageReport", "browser_page", "load_page"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--remote-debugging-pipe",
)
VIEW_WIDTH = 1280
MAX_SHOT_HEIGHT = 12000
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")


def _high_fd(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """A headless Chromium with a fresh profile, driven over the DevTools pipe."""

    def __init__(self, binary: str = CHROMIUM) -> None:
        self._profile = tempfile.mkdtemp(prefix="mesainterp-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move the child's ends above 10 so placing them on 3 and 4 cannot clobber them.
        to_chrome_r, from_chrome_w = (_high_fd(fd) for fd in (to_chrome_r, from_chrome_w))
        # The browser expects the pipe on fds 3 and 4 exactly; let bash place them (dash
        # accepts only one-digit fd numbers).
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.process = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                script,
                binary,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "about:blank",
            ],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        box = self._replies.get(message["id"])
                    if box is not None:
                        box.put(message)
                else:
                    with self._lock:
                        self.events.append(message)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = box
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        reply = box.get(timeout=timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, *, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for event in self.events:
                    if event.get("method") == method:
                        return event
            time.sleep(0.05)
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, queue.Empty):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PageReport:
    """What happened while a page loaded: requests, console errors, exceptions, a screenshot."""

    def __init__(
        self, events: list[dict[str, Any]], screenshot: bytes, values: dict[str, Any]
    ) -> None:
        self.events = events
        self.screenshot = screenshot
        self.values = values

    @property
    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    @property
    def remote_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]

    @property
    def console_errors(self) -> list[str]:
        errors = []
        for e in self.events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                errors.append(
                    " ".join(
                        str(a.get("value", a.get("description", "")))
                        for a in params.get("args", [])
                    )
                )
            elif e.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
            elif e.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append(
                    details.get("exception", {}).get("description") or details.get("text", "")
                )
        return errors


def load_page(
    path: Path,
    *,
    expressions: dict[str, str] | None = None,
    settle_s: float = 3.0,
    binary: str = CHROMIUM,
) -> PageReport:
    """Open `path` from a file:// URL, let it render, evaluate `expressions`, screenshot it."""
    with Chromium(binary) as browser:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Network", "Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        # A target opened over the protocol starts in the background, where
        # requestAnimationFrame (which chart animations wait for) does not run.
        browser.send("Page.bringToFront", session=session)
        browser.send("Emulation.setFocusEmulationEnabled", {"enabled": True}, session=session)
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", timeout=120)
        time.sleep(settle_s)  # let React / plotly finish drawing after load
        values = {}
        for name, expression in (expressions or {}).items():
            result = browser.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True},
                session=session,
            )
            values[name] = result.get("result", {}).get("value")
        # Grow the viewport to the whole page and let it settle before the shot:
        # capturing "beyond the viewport" resizes the page mid-shot, which makes
        # charts that animate on resize come out blank.
        metrics = browser.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], 600), MAX_SHOT_HEIGHT))
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": VIEW_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        time.sleep(settle_s)
        shot = browser.send(
            "Page.captureScreenshot", {"format": "png"}, session=session, timeout=120
        )
        with browser._lock:
            events = list(browser.events)
    return PageReport(events, base64.b64decode(shot["data"]), values)


@pytest.fixture
def browser_page():
    """`load_page`, or a skip when Debian's chromium is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return load_page
