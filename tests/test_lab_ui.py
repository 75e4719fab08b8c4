"""The Lab tab over HTTP (gradio_client) and in a real browser, over the shipped models."""

from pathlib import Path

import pytest
from ui_server import running_app

from tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _require_browser

ROOT = Path(__file__).resolve().parent.parent
REVIEW = "배우 연기는 좋았지만 스토리가 너무 지루했다"

pytestmark = pytest.mark.slow  # starts a server (and a browser)


@pytest.fixture(scope="module")
def url():
    with running_app(ROOT / "saved_models") as url:
        yield url


def test_lab_endpoints(url):
    from gradio_client import Client

    client = Client(url, verbose=False)
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/lab_gradients", "/lab_memory", "/lab_inside", "/lab_depth"} <= names
    summary, maps = client.predict(REVIEW, "sentiment_nsmc", api_name="/lab_inside")
    assert "matches" in summary and maps.count('class="lab-heatmap"') == 3
    summary, maps = client.predict("El gato come pan.", "translate", api_name="/lab_inside")
    assert "backward" in summary and maps.count('class="lab-heatmap"') == 2


def test_lab_tab_in_a_browser(url):
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("tab", name="Lab").click()
        page.get_by_text("Inside the shipped models").click()
        page.locator("#lab-inside-text textarea").fill(REVIEW)
        page.locator("#lab-inside-button").click()
        page.locator("#lab-inside-maps table.lab-heatmap").first.wait_for()
        assert page.locator("#lab-inside-maps table.lab-heatmap").count() == 3
        assert page.locator("#lab-inside-maps th", has_text="지").count() >= 1
        assert "matches" in page.locator("#lab-inside-summary").inner_text()
        page.locator("#lab-gradient-cells textarea").fill("simple_rnn")
        page.locator("#lab-gradients-button").click()
        page.wait_for_function(
            "document.querySelector('#lab-gradients-json').innerText.includes('simple_rnn')",
            timeout=3 * TIMEOUT_MS,
        )
        page.locator("#lab-gradients-plot canvas, #lab-gradients-plot svg").first.wait_for()
        browser.close()
