"""A real browser against a real server: Debian's Chromium driven by Playwright (no browser
download: it drives /usr/bin/chromium), and the app on loopback from `browser.live`.

Without Chromium or the playwright package the browser tests are skipped with one loud
reason — except with CI=true, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browser.live import LiveBoard, serve_board

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("SHIPLEDGER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_skipped: list[str] = []


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_line(
            f"!!! BROWSER TESTS SKIPPED: {_skipped[0]} !!!", red=True, bold=True
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module (Playwright's sync API allows one driver at a time, and a
    module may bring its own)."""
    problem = browser_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true and the board cannot be tested in a browser: {problem}")
        _skipped.append(problem)
        pytest.skip(f"!!! BROWSER TESTS SKIPPED: {problem} !!!")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def live_board(tmp_path: Path) -> Iterator[LiveBoard]:
    with serve_board(tmp_path) as board:
        yield board
