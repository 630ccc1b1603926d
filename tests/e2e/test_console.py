"""The console in a real browser (Playwright driving Debian's chromium, which `make
test` installs) against a real `batgate serve`: logging in, the CSRF guard, finding a
message and watching its timeline fill in, draining a connector, retrying a webhook
that gave up, and the overview's chart. Each test saves a screenshot in its tmp_path."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

if TYPE_CHECKING:
    from conftest import Cli, Receiver, Server

pytestmark = pytest.mark.e2e

OPERATOR, PASSWORD = "ops", "correct-horse-battery"
CONSOLE = {
    "BATGATE_CONSOLE__REFRESH_SECONDS": "1",
    "BATGATE_WEBHOOKS__GIVE_UP_AFTER": "1",  # a failing webhook gives up at once
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is not installed: `make test` installs it"
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def gateway(tmp_path: Path, start_webhook_server: Callable[..., Server]) -> Server:
    server = start_webhook_server(tmp_path / "gateway", CONSOLE)
    server.cli("operators", "create", OPERATOR, "--password", PASSWORD)
    return server


@pytest.fixture
def page(browser: Browser, gateway: Server, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(base_url=gateway.base_url)
    found = context.new_page()
    try:
        yield found
    finally:
        found.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        context.close()


def log_in(page: Page, password: str = PASSWORD) -> None:
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.fill("input[name=name]", OPERATOR)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_log_in_and_out(page: Page, tmp_path: Path) -> None:
    log_in(page, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    page.screenshot(path=str(tmp_path / "refused.png"))
    log_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "batgate_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Log out")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.goto("/console/messages")
    expect(page).to_have_url(re.compile(r"/console/login\?next=/console/messages"))


def test_a_form_without_the_csrf_token_is_refused(page: Page, gateway: Server) -> None:
    log_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # The session's cookie goes along (same origin), but not the form's token.
    answer = page.request.post("/console/connectors/sandbox/drain", form={"x": "1"})
    assert answer.status == 403
    assert "CSRF" in answer.text()
    forged = page.request.post("/console/connectors/sandbox/drain", form={"csrf": "guess"})
    assert forged.status == 403
    views = json.loads(gateway.cli("connectors", "--json").stdout.splitlines()[0])
    assert views["state"] != "drained"


def test_find_a_message_and_watch_its_timeline(
    page: Page, gateway: Server, make_receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    receiver = make_receiver({"/hook": {"fail_first": 1}})
    account = gateway.create_account("shop", webhook_url=receiver.url("/hook"))
    to = "+380501230003"  # the sandbox: not reachable on Viber, SMS works
    entry = gateway.send_one(
        account,
        {
            "type": "viber_promo",
            "from": "Shop",
            "to": to,
            "text": "20% off",
            "fallback": {"type": "sms", "text": "20% off"},
        },
    )
    log_in(page)
    page.click("nav >> text=Messages")
    page.fill("input[name=to]", to)
    page.click("button:has-text('Search')")
    page.click(f"a:has-text('{entry['messageId']}')")
    timeline = page.locator("#timeline")
    # The page refreshes itself: the fallback step and the final status appear.
    expect(timeline).to_contain_text("viber (step 0)", timeout=20_000)
    expect(timeline.locator(".status-delivered")).to_be_visible(timeout=20_000)
    expect(page.locator("#attempts")).to_contain_text("500", timeout=20_000)
    expect(page.locator("#attempts")).to_contain_text("200", timeout=20_000)
    expect(page.locator("#document")).to_contain_text('"deliverystatus": "delivered"')
    page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)


def test_drain_a_connector_and_the_cli_sees_it(page: Page, gateway: Server) -> None:
    log_in(page)
    page.click("nav >> text=Connectors")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-connector=sandbox] button").click()
    expect(page.get_by_role("status")).to_contain_text("drained sandbox")
    views = [json.loads(line) for line in gateway.cli("connectors", "--json").stdout.splitlines()]
    assert {v["name"]: v["state"] for v in views}["sandbox"] == "drained"
    page.locator("tr[data-connector=sandbox] button").click()
    views = [json.loads(line) for line in gateway.cli("connectors", "--json").stdout.splitlines()]
    assert {v["name"]: v["state"] for v in views}["sandbox"] != "drained"


def test_retry_a_webhook_that_gave_up(
    page: Page, gateway: Server, make_receiver: Callable[..., Receiver]
) -> None:
    receiver = make_receiver({"/hook": {"always": 503}})
    account = gateway.create_account("hooked", webhook_url=receiver.url("/hook"))
    mid = gateway.send_one(
        account, {"type": "sms", "from": "Shop", "to": "+380501234567", "text": "hi"}
    )["messageId"]
    gateway.wait_final(account, mid, 20)
    log_in(page)
    page.goto("/console/webhooks")
    row = page.locator("tr[data-event]").filter(has_text="given up").filter(has_text=mid).first
    deadline = time.monotonic() + 20
    while row.count() == 0 and time.monotonic() < deadline:
        page.reload()
        row = page.locator("tr[data-event]").filter(has_text="given up").filter(has_text=mid).first
    expect(row).to_be_visible()
    webhook_id = row.locator("td.mono").first.inner_text()
    receiver.set_rules({})  # the endpoint answers 200 now
    row.locator("button").click()
    expect(page.get_by_role("status")).to_contain_text("sent again")
    receiver.wait(
        lambda hooks: any(h.webhook_id == webhook_id and h.acked for h in hooks),
        20,
        f"{webhook_id} delivered after the retry",
    )


def test_the_overview_chart_draws_what_went_final(
    page: Page, gateway: Server, tmp_path: Path
) -> None:
    account = gateway.create_account("busy")
    numbers = [f"+38050123{i:04d}" for i in range(10, 30)] + ["+380501230001"]
    answer = gateway.send(
        account, [{"type": "sms", "from": "Shop", "to": n, "text": "hi"} for n in numbers]
    )
    gateway.wait_all(account, [m["messageId"] for m in answer["messages"]], 20)
    log_in(page)
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    delivered = chart.locator("polyline[data-series=delivered]")
    points = delivered.get_attribute("points") or ""
    assert len(points.split()) >= 2
    assert chart.locator("circle.dot.ok").count() >= 1  # a slice with deliveries
    assert chart.locator("circle.dot.bad").count() >= 1  # and the undeliverable one
    expect(page.locator("#total")).to_have_text("21")
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)


def test_the_operators_commands(fresh_cli: Cli) -> None:
    """`batgate operators create | list | disable | enable`, as an operator types them."""
    made = fresh_cli("operators", "create", "carol", "--password", "long-enough-pw")
    assert json.loads(made.stdout) == {"name": "carol", "created": True}
    again = fresh_cli("operators", "create", "carol", "--password", "long-enough-pw", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    short = fresh_cli("operators", "create", "dave", "--password", "short", check=False)
    assert short.returncode == 1 and "at least 10" in short.stderr
    listed = fresh_cli("operators", "list", "--json").stdout.splitlines()
    assert [(o["name"], o["disabled"]) for o in map(json.loads, listed)] == [("carol", False)]
    assert json.loads(fresh_cli("operators", "disable", "carol").stdout)["disabled"] is True
    assert fresh_cli("operators", "enable", "nobody", check=False).returncode == 1
