"""A small W3C WebDriver client over httpx, driving Debian's headless Chromium
through ``chromedriver`` (no Selenium dependency)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ioc.embedded.ports import free_port, wait_for_port

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
    "--force-device-scale-factor=1", "--lang=vi-VN", "--window-size=1920,1080",
]


def browser_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, client: httpx.AsyncClient, session: str) -> None:
        self._client = client
        self._session = session

    async def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        response = await self._client.request(method, f"/session/{self._session}{path}", json=body)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    async def open(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def set_viewport(self, width: int, height: int) -> None:
        """Size the window so the page itself gets ``width`` x ``height`` pixels."""
        rect = await self._call("GET", "/window/rect")
        inner = await self.script("return [window.innerWidth, window.innerHeight]")
        await self._call("POST", "/window/rect", {"width": width + rect["width"] - inner[0],
                                                  "height": height + rect["height"] - inner[1]})

    async def find(self, css: str) -> str:
        return (await self._call("POST", "/element", {"using": "css selector", "value": css}))[ELEMENT]

    async def type(self, css: str, text: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def clear(self, css: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/clear", {})

    async def click(self, css: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/click", {})

    async def _pointer(self, *actions: dict[str, Any]) -> None:
        mouse = {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}}
        await self._call("POST", "/actions", {"actions": [{**mouse, "actions": list(actions)}]})

    async def press(self, css: str) -> None:
        """Move the mouse to the middle of an element and press its button (and hold it)."""
        element = await self.find(css)
        await self._pointer({"type": "pointerMove", "origin": {ELEMENT: element}, "x": 0, "y": 0},
                            {"type": "pointerDown", "button": 0})

    async def release(self) -> None:
        """Let go of the mouse button where the mouse is now."""
        await self._pointer({"type": "pointerUp", "button": 0})

    async def script(self, source: str, *args: Any) -> Any:
        return await self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    async def wait_for(self, source: str, *args: Any, timeout: float = 15.0) -> Any:
        """Poll a script until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.script(source, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout}s for: {source}")
            await asyncio.sleep(0.1)

    async def screenshot(self) -> bytes:
        return base64.b64decode(await self._call("GET", "/screenshot"))

    async def console_errors(self) -> list[str]:
        """Severe browser log entries (JavaScript errors, failed loads)."""
        logs = await self._call("POST", "/se/log", {"type": "browser"})
        return [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]


@contextlib.asynccontextmanager
async def chromium(time_zone: str = "UTC") -> AsyncIterator[Browser]:
    """Headless Chromium with a throwaway profile, its clock in ``time_zone`` (the PC's zone, as
    a kiosk's would be); everything started is stopped after."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ioc-chromium-") as profile:
        driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env={**os.environ, "TZ": time_zone})
        try:
            if not await asyncio.to_thread(wait_for_port, "127.0.0.1", port, timeout=20,
                                           alive=lambda: driver.poll() is None):
                raise WebDriverError("chromedriver did not start")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                capabilities = {"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "goog:chromeOptions": {"binary": shutil.which("chromium"),
                                           "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"]},
                }}}
                response = await client.post("/session", json=capabilities)
                value = response.json()["value"]
                if response.status_code >= 400:
                    raise WebDriverError(f"no browser session: {value}")
                session = value["sessionId"]
                try:
                    yield Browser(client, session)
                finally:
                    await client.delete(f"/session/{session}")
        finally:
            driver.terminate()
            try:
                driver.wait(10)
            except subprocess.TimeoutExpired:
                driver.kill()
                driver.wait()
