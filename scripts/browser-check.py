#!/usr/bin/env python3
"""Loads a dashboard page in headless Chromium (Debian's package) and reports what a user would see.

    scripts/browser-check.py URL SCREENSHOT.png

Prints one JSON object: the member rows of the rendered DOM (node and state), the links in it, the
screenshot's size and dimensions, how many of its pixels are the dashboard's "up" green (#1f9d55) and how many
distinct colours it has. The tests read it; a person can run it against any node's gateway.
"""
import html.parser
import json
import shutil
import struct
import subprocess
import sys
import zlib

GREEN = (0x1F, 0x9D, 0x55)


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("browser-check: no chromium on PATH (apt-get install chromium)")


def run(args, timeout=90):
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-dev-shm-usage", "--window-size=1280,1100"]
    return subprocess.run([browser()] + flags + args, capture_output=True, timeout=timeout, check=False)


class Rows(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.members = []
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "member" in (attrs.get("class") or "").split():
            self.members.append({"node": attrs.get("data-node"), "state": attrs.get("data-state")})
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def png_pixels(data):
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes): (width, height, rows)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    return width, height, channels, rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, screenshot = sys.argv[1], sys.argv[2]
    dom = run(["--dump-dom", url])
    if dom.returncode != 0:
        sys.exit(f"browser-check: chromium --dump-dom failed: {dom.stderr.decode(errors='replace')[-2000:]}")
    rows = Rows()
    rows.feed(dom.stdout.decode(errors="replace"))
    shot = run([f"--screenshot={screenshot}", url])
    if shot.returncode != 0:
        sys.exit(f"browser-check: chromium --screenshot failed: {shot.stderr.decode(errors='replace')[-2000:]}")
    with open(screenshot, "rb") as f:
        data = f.read()
    width, height, channels, pixels = png_pixels(data)
    green, colours = 0, set()
    for line in pixels:
        for x in range(0, len(line), channels):
            r, g, b = line[x], line[x + 1], line[x + 2]
            colours.add((r >> 3, g >> 3, b >> 3))
            if abs(r - GREEN[0]) <= 12 and abs(g - GREEN[1]) <= 12 and abs(b - GREEN[2]) <= 12:
                green += 1
    print(json.dumps({
        "members": rows.members, "links": rows.links, "title_found": "<h1>" in dom.stdout.decode(errors="replace"),
        "png_bytes": len(data), "width": width, "height": height, "green_pixels": green,
        "colours": len(colours),
    }))


if __name__ == "__main__":
    main()
