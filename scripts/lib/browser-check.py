#!/usr/bin/env python3
"""Loads a local HTML page in headless Chromium and reports what happened, as JSON on stdout.

Drives Debian's `chromium` over the DevTools protocol (websocket-client, which scripts/setup
installs into $cache/python). It records every console message, uncaught exception, log entry
(Content-Security-Policy violations arrive there) and network request the page makes; evaluates
the given JavaScript expressions in order (they may act on the page: set a filter, click); then
takes a screenshot and measures it. It judges nothing: the tests assert on its output.

usage: browser-check.py PAGE.html [--eval NAME=EXPRESSION]... [--screenshot OUT.png]
                        [--width W] [--height H] [--mobile] [--full-page]

Output: {"url", "title", "console": [{"level", "text"}], "exceptions": [text],
         "requests": [{"url", "blocked": why it did not load (e.g. "csp") or null}],
         "evals": {NAME: value or {"error": text}}, "screenshot": {"path", "width", "height",
         "distinct_colors", "most_common_fraction", "luma_stddev"} or null}
Exit codes: 0 when the page was loaded and measured, 2 on bad usage or a missing browser or client.
"""

import argparse
import base64
import collections
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib


def fail(message):
    print(f"browser-check: error: {message}", file=sys.stderr)
    sys.exit(2)


def cache_dir():
    if os.environ.get("PROBITY_CACHE"):
        return pathlib.Path(os.environ["PROBITY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "probity"


def import_client():
    sys.path.insert(0, str(cache_dir() / "python"))
    try:
        import websocket  # noqa: PLC0415 (installed by scripts/setup into the cache)
    except ImportError:
        fail(f"missing websocket-client in {cache_dir() / 'python'}: run scripts/setup to install it")
    return websocket


def png_stats(data):
    """Width, height, distinct colours, the most common colour's share and the standard deviation
    of luma (0.299 R + 0.587 G + 0.114 B, 0 to 255) over the pixels of an 8-bit PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, bytearray(), None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace != 0:
                raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if width is None:
        raise ValueError("PNG without IHDR")
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev = bytearray(stride)
    counts = collections.Counter()
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                row[i] = (row[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ValueError(f"bad PNG filter {kind} on row {y}")
        counts.update(bytes(row[i:i + 3]) for i in range(0, stride, bpp))
        prev = row
    total = width * height
    # Luma moments from the colour counts: one term per distinct colour, not per pixel.
    mean = square = 0.0
    for rgb, n in counts.items():
        luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
        mean += n * luma
        square += n * luma * luma
    mean, square = (mean / total, square / total) if total else (0.0, 0.0)
    return {"width": width, "height": height, "distinct_colors": len(counts),
            "most_common_fraction": counts.most_common(1)[0][1] / total if total else 1.0,
            "luma_stddev": max(square - mean * mean, 0.0) ** 0.5}


class DevTools:
    """One page's DevTools session: commands by id, events kept as they arrive."""

    def __init__(self, websocket, url):
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def command(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == mine:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_for(self, method, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if any(e["method"] == method for e in self.events):
                return True
            self.ws.settimeout(max(deadline - time.time(), 0.05))
            try:
                message = json.loads(self.ws.recv())
            except Exception:  # noqa: BLE001 (a timeout: check the deadline again)
                continue
            if "method" in message:
                self.events.append(message)
        return False

    def drain(self, seconds):
        """Collects the events that arrive within `seconds`."""
        self.wait_for("Probity.never", seconds)


def start_browser(chromium, profile, width, height):
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio",
            "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},{height}",
            "about:blank"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = pathlib.Path(profile) / "DevToolsActivePort"
    deadline = time.time() + 60
    while time.time() < deadline:
        if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
            return process, int(port_file.read_text().splitlines()[0])
        if process.poll() is not None:
            fail(f"{chromium} exited with status {process.returncode} before it opened its DevTools port")
        time.sleep(0.1)
    process.kill()
    fail(f"{chromium} did not open its DevTools port within 60 s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=EXPRESSION")
    parser.add_argument("--screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--mobile", action="store_true", help="emulate a phone (touch, device scale 2)")
    parser.add_argument("--full-page", action="store_true", help="capture the whole page, not only the viewport")
    args = parser.parse_args()

    page = pathlib.Path(args.page).resolve()
    if not page.is_file():
        fail(f"{args.page}: no such page")
    evals = []
    for item in args.eval:
        name, sep, expression = item.partition("=")
        if not sep or not name:
            fail(f"--eval: expected NAME=EXPRESSION, found '{item}'")
        evals.append((name, expression))
    chromium = os.environ.get("PROBITY_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        fail("missing chromium (Debian's package chromium): run scripts/setup to install it")
    websocket = import_client()

    profile = tempfile.mkdtemp(prefix="probity-chromium-")
    process = None
    try:
        process, port = start_browser(chromium, profile, args.width, args.height)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            targets = json.load(response)
        target = next((t for t in targets if t.get("type") == "page"), None)
        if target is None:
            fail("the browser has no page to drive")
        tools = DevTools(websocket, target["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Network", "Page"):
            tools.command(f"{domain}.enable")
        tools.command("Emulation.setDeviceMetricsOverride", width=args.width, height=args.height,
                      deviceScaleFactor=2 if args.mobile else 1, mobile=args.mobile)
        if args.mobile:
            tools.command("Emulation.setTouchEmulationEnabled", enabled=True)
        url = page.as_uri()
        tools.command("Page.navigate", url=url)
        if not tools.wait_for("Page.loadEventFired", 60):
            fail(f"{url} did not finish loading within 60 s")
        results = {}
        for name, expression in evals:
            answer = tools.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
            if "exceptionDetails" in answer:
                details = answer["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text", "exception")
                results[name] = {"error": text}
            else:
                results[name] = answer.get("result", {}).get("value")
        title = tools.command("Runtime.evaluate", expression="document.title", returnByValue=True)
        shot = None
        if args.screenshot:
            params = {"format": "png"}
            if args.full_page:
                params["captureBeyondViewport"] = True
                metrics = tools.command("Page.getLayoutMetrics")
                size = metrics.get("cssContentSize") or metrics.get("contentSize")
                params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            data = base64.b64decode(tools.command("Page.captureScreenshot", **params)["data"])
            pathlib.Path(args.screenshot).write_bytes(data)
            shot = {"path": args.screenshot, **png_stats(data)}
        tools.drain(0.3)
        console, exceptions, requests, blocked = [], [], {}, {}
        for event in tools.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                console.append({"level": params.get("type", ""), "text": text})
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                console.append({"level": entry.get("level", ""), "text": entry.get("text", "")})
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Network.requestWillBeSent":
                requested = params.get("request", {}).get("url", "")
                if requested != url:
                    requests[params.get("requestId", requested)] = requested
            elif method == "Network.loadingFailed":
                blocked[params.get("requestId", "")] = params.get("blockedReason") or params.get("errorText") or "failed"
        print(json.dumps({"url": url, "title": title.get("result", {}).get("value"), "console": console,
                          "exceptions": exceptions,
                          "requests": [{"url": u, "blocked": blocked.get(i)} for i, u in requests.items()], "evals": results, "screenshot": shot},
                         sort_keys=True))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
