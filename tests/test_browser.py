"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
uvicorn server on the demo. Screenshots are kept under ``test-artifacts/``."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from reachmeter.settings import Settings
from reachmeter.store import open_store
from reachmeter.web import create_app
from tests.webdemo import IMG_TEXT, SCRIPT_TEXT, demo_store_path

CHROMIUM = Path(os.environ.get("REACHMETER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
CHART_TIMEOUT = 60_000  # ms: the first request builds the Vega bundle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason=f"Chromium is not installed at {CHROMIUM} (Debian package `chromium`)",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The base URL of a real server on the demo, and the output with hostile mentions."""
    path, hostile_output = demo_store_path(tmp_path_factory.getbasetemp())
    store = open_store(path)
    app = create_app(store, Settings(public_dashboard=True))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", hostile_output
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = CHROMIUM if CHROMIUM.exists() else Path(str(shutil.which("chromium")))
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # Chromium cannot capture a page taller than its largest texture in one picture.
    tall = page.evaluate("() => document.documentElement.scrollHeight") > 8000
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=not tall)


def _chart_drawn(page: Any, container: str) -> None:
    page.wait_for_selector(f"{container} svg, {container} canvas", timeout=CHART_TIMEOUT)
    marks = page.locator(f"{container} svg path, {container} svg rect").count()
    assert marks > 0, f"the chart {container} has no marks"


def test_overview_outputs_output_person(page: Any, server: tuple[str, int]) -> None:
    base, _ = server
    page.goto(base + "/")
    assert page.locator("h1").inner_text() == "Overview"
    assert page.get_by_text("DEMO DATA").first.is_visible()
    _chart_drawn(page, "#chart-attention")
    _shot(page, "overview")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Outputs").click()
    page.wait_for_url("**/outputs")
    rows = page.locator("#outputs-table tbody tr")
    assert rows.count() == 50
    scores = [
        float(s)
        for s in page.locator("#outputs-table td[data-score]").evaluate_all(
            "cells => cells.map(c => c.dataset.score)"
        )
    ]
    assert scores == sorted(scores, reverse=True)

    page.locator('#outputs-table a[data-sort="title"]').click()
    page.wait_for_url("**/outputs?*sort=title*")
    titles = page.locator("#outputs-table tbody tr td:first-child").all_inner_texts()
    assert titles == sorted(titles, key=str)

    page.select_option("#f-type", "dataset")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#outputs-table tbody tr td:nth-child(2)')]"
        ".every(td => td.textContent.trim() === 'dataset')"
    )
    assert "type=dataset" in page.url
    types = set(page.locator("#outputs-table tbody tr td:nth-child(2)").all_inner_texts())
    assert types == {"dataset"}
    _shot(page, "outputs-datasets")

    page.goto(base + "/outputs")
    page.locator("#outputs-table tbody tr").first.locator("a").click()
    page.wait_for_url("**/outputs/*")
    assert page.locator("#score-value").is_visible()
    _chart_drawn(page, "#chart-donut")
    _chart_drawn(page, "#chart-timeline")
    _shot(page, "output")

    page.locator("dl.facts a[href^='/people/']").first.click()
    page.wait_for_url("**/people/*")
    assert page.locator("#components").is_visible()
    _chart_drawn(page, "#chart-person-timeline")
    _shot(page, "person")
    assert page.dialogs == []


def test_hostile_mentions_are_shown_as_text(page: Any, server: tuple[str, int]) -> None:
    base, hostile_output = server
    page.goto(f"{base}/outputs/{hostile_output}")
    _chart_drawn(page, "#chart-donut")
    assert page.get_by_text(SCRIPT_TEXT, exact=True).is_visible()
    assert page.get_by_text(IMG_TEXT, exact=True).is_visible()
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("() => typeof window.alert") == "function"
    assert page.dialogs == []
    page.locator(f"text={SCRIPT_TEXT}").scroll_into_view_if_needed()
    _shot(page, "hostile-mentions")


def test_keyboard_and_phone(browser: Any, server: tuple[str, int]) -> None:
    base, _ = server
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(base + "/outputs")
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("() => location.hash") == "#main"
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px on a phone"
        _shot(page, "outputs-phone")
    finally:
        context.close()
