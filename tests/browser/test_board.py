"""The dispatcher's board in a real browser: it asks for a key and keeps it out of URLs, shows
the loads, follows the ledger live (a late ping, an exception raised over REST) without a
reload, works from the keyboard, and shows GraphQL's errors instead of swallowing them.

Set SHIPLEDGER_BOARD_SCREENSHOT=docs/board.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi.testclient import TestClient

from api.app import Settings, create_app
from api.board.routes import ASSETS
from browser.live import LiveBoard, with_board

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

WAIT_MS = 15000  # the longest a live change may take to show (it usually takes < 1 s)


def open_page(browser: Browser, errors: list[str], requests: list[str]) -> Page:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(
        viewport={"width": 1480, "height": 900},
        timezone_id="America/Chicago",
        locale="en-GB",
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: errors.append(f"console: {message.text}")
        if message.type == "error"
        else None,
    )
    page.on("request", lambda request: requests.append(request.url))
    return page


def rest(board: LiveBoard, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{board.base_url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {board.key}"},
        timeout=15,
    )
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def focused_load(page: Page) -> str | None:
    value: str | None = page.evaluate(
        "() => document.activeElement?.closest('tr[data-load-id]')"
        "?.querySelector('th strong')?.textContent ?? null"
    )
    return value


def test_board_follows_the_ledger_live_from_the_keyboard_when_facts_arrive(
    browser: Browser, live_board: LiveBoard
) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    requests: list[str] = []
    page = open_page(browser, errors, requests)
    response = page.goto(f"{live_board.base_url}/board")
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]

    # a refused key is shown, not swallowed, and the form comes back
    page.get_by_label("Dispatcher API key").fill("sl_000000000000_not-a-key")
    page.get_by_role("button", name="Open board").click()
    expect(page.locator("#error-list")).to_contain_text("UNAUTHENTICATED")
    expect(page.get_by_label("Dispatcher API key")).to_be_visible()

    page.get_by_label("Dispatcher API key").fill(live_board.key)
    page.get_by_label("Dispatcher API key").press("Enter")
    rows = page.locator("#loads-body tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("L-DAY")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("#loads-body tr.row-late")).to_contain_text("L-DAY-2")
    expect(page.locator("#loads-body tr.row-late")).to_contain_text("LATE")
    expect(page.locator("#loads-body tr.row-at_risk")).to_contain_text("L-DAY-3")
    expect(page.locator("#exceptions-body")).to_contain_text("lane closed on I-55")
    expect(page.locator("#map svg .vehicle")).to_have_count(2)
    expect(page).to_have_title("1 late · 1 exception — shipledger board")

    # keyboard: Tab into the loads, arrows move, Enter selects; the focus is visible
    page.get_by_label("Show delivered and cancelled").focus()
    page.keyboard.press("Tab")
    assert focused_load(page) == "L-DAY"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused_load(page) == "L-DAY-3"
    page.keyboard.press("End")
    assert focused_load(page) == "L-DAY-4"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#stops-heading")).to_have_text("Stop times · L-DAY-2")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(page.locator("#stops-heading")).to_have_text("Stop times · L-DAY")
    assert page.evaluate("() => document.activeElement.matches(':focus-visible')")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).boxShadow")
    assert outline != "none"
    expect(page.locator("#loads-body tr[aria-current='true']")).to_contain_text("L-DAY")

    stops = page.locator("#stops-body tr")
    expect(stops).to_have_count(3)
    expect(stops.nth(0).locator("td").nth(2)).to_contain_text("via gps")  # arrived at WH-1
    expect(stops.nth(1).locator("td").nth(2)).to_have_text("—")  # not at CUST-1 yet
    page.evaluate("() => { window.__sameDocument = true; }")

    # a late batch of pings: the truck reaches CUST-1 — the stop time appears without reload
    summary = rest(
        live_board, "/telematics/pings", live_board.ping_json(live_board.morning.late_pings)
    )
    assert summary["accepted"] == len(live_board.morning.late_pings)
    expect(stops.nth(1).locator("td").nth(2)).to_contain_text("via gps")
    expect(stops.nth(1).locator("td").nth(2)).to_contain_text("07:5")  # ≈ 07:50 in Chicago

    # an exception raised over REST: the queue and the load's row show it without reload
    load_id = live_board.load_id("L-DAY")
    rest(
        live_board,
        f"/loads/{load_id}/exceptions",
        {"kind": "held", "owner": "consignee", "note": "waiting for a dock door"},
    )
    expect(page.locator("#exceptions-body")).to_contain_text("waiting for a dock door")
    row = page.locator("#loads-body tr", has_text="L-DAY").first
    expect(row.locator(".exc-badge")).to_have_text("⚑ 1 open")
    expect(row).to_contain_text("consignee")

    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert focused_load(page) == "L-DAY"  # live updates keep the keyboard where it was
    expect(page.locator("#errors")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('shipledger.board.key')") == live_board.key
    assert not [url for url in requests if live_board.key in url], "the key went into a URL"
    assert errors == []

    shot = os.environ.get("SHIPLEDGER_BOARD_SCREENSHOT")
    if shot:
        expect(page.locator("#loads-body tr.changed")).to_have_count(0)  # the flash has faded
        page.mouse.move(0, 0)
        page.screenshot(path=str(Path(shot)), full_page=True)
    page.context.close()


def sign_in(page: Page, board: LiveBoard) -> None:
    page.goto(f"{board.base_url}/board")
    page.get_by_label("Dispatcher API key").fill(board.key)
    page.get_by_role("button", name="Open board").click()


def test_board_catches_up_without_reload_when_its_live_connection_drops(
    browser: Browser, live_board: LiveBoard
) -> None:
    from playwright.sync_api import WebSocketRoute, expect

    errors: list[str] = []
    page = open_page(browser, errors, [])
    sockets: list[WebSocketRoute] = []

    def through(socket: WebSocketRoute) -> None:  # a pass-through the test can cut
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket("**/graphql", through)
    sign_in(page, live_board)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.evaluate("() => { window.__sameDocument = true; }")

    sockets[0].close(code=4500, reason="cut by the test")
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    rest(
        live_board,
        f"/loads/{live_board.load_id('L-DAY-3')}/exceptions",
        {"kind": "short", "owner": "warehouse", "note": "two pallets short"},
    )

    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    row = page.locator("#loads-body tr", has_text="L-DAY-3")
    expect(row.locator(".exc-badge")).to_have_text("⚑ 1 open")
    expect(page.locator("#exceptions-body")).to_contain_text("two pallets short")
    assert len(sockets) == 2
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert errors == []
    page.context.close()


def test_board_and_its_assets_carry_a_strict_policy_when_served(tmp_path: Path) -> None:
    app = with_board(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}")))
    with TestClient(app) as client:
        page = client.get("/board")
        assets = {name: client.get(f"/board/static/{name}") for name in ASSETS}
        unknown = client.get("/board/static/routes.py")
        traversal = client.get("/board/static/..%2Froutes.py")
    app.state.services.ledger.close()

    policy = page.headers["content-security-policy"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert response.headers["content-type"] == ASSETS[name]
        assert response.headers["content-security-policy"] == policy
    assert unknown.status_code == 404 and traversal.status_code == 404
    assert b"<script" not in page.content.split(b"</head>")[1]  # no inline script in the body
