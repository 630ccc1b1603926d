"""`make screenshots`: the console's main pages as PNGs for docs/console.md.

Starts `batgate serve` on a throwaway SQLite database (the sandbox, quick receipts),
makes an operator and two accounts, sends a few hundred messages of every outcome
the sandbox knows (with fallbacks), drives Debian's chromium through the pages and
saves docs/console-*.png. Everything it starts, it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
BATGATE = Path(sys.executable).with_name("batgate")
DOCS = ROOT / "docs"
PASSWORD = "screenshots-only"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [str(BATGATE), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def traffic(url: str, key: str) -> None:
    """Messages of every sandbox outcome, some with a Viber → SMS fallback."""
    endings = ["1234", "5678", "9012", "0001", "0002", "0003", "4321", "8765"]
    messages = []
    for i in range(240):
        to = f"+38050{i:03d}{endings[i % len(endings)]}"
        if i % 3 == 0:
            messages.append(
                {
                    "type": "viber_promo",
                    "from": "Shop",
                    "to": to,
                    "text": "Sale",
                    "fallback": {"type": "sms", "text": "Sale"},
                }
            )
        else:
            messages.append({"type": "sms", "from": "Shop", "to": to, "text": f"Order {i}"})
    with httpx.Client(base_url=url, headers={"X-Authorization-Key": key}) as client:
        for start in range(0, len(messages), 40):
            client.post("/bat/messagelist", json={"messages": messages[start : start + 40]})
            time.sleep(0.5)


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: Debian's chromium is missing (`make screenshots` installs it)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="batgate-screenshots-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATGATE_")}
    env |= {
        "BATGATE_DATABASE_URL": f"sqlite:///{work / 'batgate.db'}",
        "BATGATE_SANDBOX__DELIVERY_DELAY": "0.5",
        "BATGATE_DISPATCHER__RETRY_DELAYS": "[0.2,0.2]",
        "BATGATE_RATE_LIMIT__ENABLED": "false",
    }
    cli(env, "operators", "create", "admin", "--password", PASSWORD)
    key = json.loads(
        cli(env, "accounts", "create", "shop", "--webhook-url", "https://hooks.example.com/batgate")
    )["apiKey"]
    cli(env, "accounts", "create", "clinic")
    cli(env, "accounts", "add-number", "shop", "+380441234567")
    server = subprocess.Popen(
        [str(BATGATE), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        traffic(url, key)
        time.sleep(4)
        shoot(chromium, url)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def shoot(chromium: str, url: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(base_url=url, viewport={"width": 1280, "height": 900})
        page.goto("/console/login")
        page.screenshot(path=str(DOCS / "console-login.png"))
        page.fill("input[name=name]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("svg.chart")
        page.screenshot(path=str(DOCS / "console-overview.png"), full_page=True)
        page.goto("/console/messages")
        page.screenshot(path=str(DOCS / "console-messages.png"))
        first = page.locator("#results tbody a").first.get_attribute("href") or "/console/"
        page.goto(first)
        page.screenshot(path=str(DOCS / "console-message.png"), full_page=True)
        for name in ("connectors", "webhooks", "accounts"):
            page.goto(f"/console/{name}")
            page.screenshot(path=str(DOCS / f"console-{name}.png"))
        browser.close()
    for png in sorted(DOCS.glob("console-*.png")):
        print(png.relative_to(ROOT))


if __name__ == "__main__":
    sys.exit(main())
