"""The demo in a real browser (headless Chromium driven by Playwright) over the shipped models.

Skipped where Chromium or Playwright is missing, unless SEQ2SEQ_REQUIRE_BROWSER=1 (set by .ci/run,
which installs both), where that is a failure. With SEQ2SEQ_SCREENSHOTS=DIR the screenshot test
writes one PNG per tab there (the README's are made with `SEQ2SEQ_SCREENSHOTS=docs/screenshots`).
"""

import os
import shutil
from pathlib import Path

import pytest
from ui_server import running_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless, and no calls home: the machine's network is closed.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def _require_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright"
    else:
        missing = None if CHROMIUM else "chromium"
    if missing and os.environ.get("SEQ2SEQ_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{missing} is not installed (.ci/run installs it)")
    if missing:
        pytest.skip(f"{missing} is not installed")


@pytest.fixture(scope="module")
def page():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with running_app(ROOT / "saved_models") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        yield page
        browser.close()


def _value_of(page, elem_id: str) -> str:
    box = page.locator(f"#{elem_id} textarea")
    page.wait_for_function(
        f"document.querySelector('#{elem_id} textarea').value.length > 0", timeout=TIMEOUT_MS
    )
    return box.input_value()


def _click_and_wait_for_change(page, button: str, output: str) -> None:
    """Clicks a button and waits until the output element's content differs from before the click."""
    before = page.locator(f"#{output}").inner_html()
    page.locator(f"#{button}").click()
    page.wait_for_function(
        "([id, before]) => document.getElementById(id).innerHTML !== before",
        arg=[output, before],
        timeout=TIMEOUT_MS,
    )


def _caption_after_click(page) -> str:
    """Clicks Caption and returns the new caption, once the overlays show the new image."""
    _click_and_wait_for_change(page, "caption-button", "looked")
    return _value_of(page, "caption")


def _clear_image(page) -> None:
    remove = page.locator("#caption-image button[aria-label='Remove Image']")
    if remove.count():  # an earlier test's image
        remove.first.click()
    page.locator("#caption-image img").first.wait_for(state="detached")


def test_translate_a_spanish_sentence(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill("¿Dónde está la biblioteca?")
    page.locator("#translate-button").click()
    assert "library" in _value_of(page, "translation").lower()
    heatmap = page.locator("#attention table.attention-heatmap")
    assert heatmap.locator("th", has_text="biblioteca").count() == 1
    assert heatmap.locator("th", has_text="library").count() == 1


def test_empty_text_shows_a_message_and_the_app_keeps_serving(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill("")
    page.locator("#translate-button").click()
    page.get_by_text("Type a sentence first.").first.wait_for()
    page.locator("#spanish textarea").fill("Me gusta leer.")
    page.locator("#translate-button").click()
    page.wait_for_function("!document.querySelector('#translation textarea').value.includes('library')")
    assert "read" in _value_of(page, "translation").lower()


def test_numbers_come_through_and_the_heatmap_shows_words(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill("El hospital tiene 45 camas.")
    page.locator("#translate-button").click()
    page.wait_for_function("document.querySelector('#translation textarea').value.includes('45')")
    heatmap = page.locator("#attention table.attention-heatmap")
    heatmap.locator("th", has_text="camas").wait_for()  # a shipped subword model's pieces merged back
    assert heatmap.locator("th", has_text="camas").count() == 1


def test_the_word_translator_can_be_chosen(page):
    if not (ROOT / "saved_models" / "translate_spa_en_word" / "saved_model.pb").exists():
        pytest.skip("no word translator is shipped")
    page.get_by_role("tab", name="Translate").click()
    choice = page.locator("#translator")
    choice.get_by_text("whole words", exact=False).click()
    try:
        page.locator("#spanish textarea").fill("Me gusta leer.")
        page.locator("#translate-button").click()
        page.wait_for_function("document.querySelector('#translation textarea').value.includes('read')")
        page.locator("#attention table.attention-heatmap th", has_text="leer").wait_for()
    finally:  # the other tests expect the first model
        choice.get_by_text("Spanish → English translation", exact=True).click()


def test_upload_an_image_and_read_its_caption(page):
    page.get_by_role("tab", name="Caption").click()
    _clear_image(page)
    page.locator("#caption-image input[type=file]").set_input_files(
        str(ROOT / "ui" / "examples" / "astronaut.jpg")
    )
    page.locator("#caption-image img").first.wait_for()
    caption = _caption_after_click(page)
    assert len(caption.split()) >= 3
    assert page.locator("#looked figure.attention-word").count() == len(caption.rstrip(".").split()) + 1


def test_pick_a_shipped_example_image(page):
    page.get_by_role("tab", name="Caption").click()
    _clear_image(page)
    page.locator("#tab-caption img[src*='photographer']").first.click()
    page.locator("#caption-image img[src*='photographer']").first.wait_for()
    assert len(_caption_after_click(page).split()) >= 3


def test_a_file_that_is_not_an_image_gets_a_message(page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("these are my notes, not a picture")
    page.get_by_role("tab", name="Caption").click()
    _clear_image(page)
    page.locator("#caption-image input[type=file]").set_input_files(str(fake))
    page.locator("#caption-button").click()
    page.get_by_text("That file is not an image").first.wait_for()


def test_score_a_korean_review(page):
    page.get_by_role("tab", name="Sentiment").click()
    page.locator("#review textarea").fill("와! 진짜 화날 정도로 재밌네요")
    page.locator("#score-button").click()
    assert _value_of(page, "verdict").startswith("positive")
    assert page.locator("#moves .token-move").count() == 13


def test_score_an_english_review_and_plot_its_trajectory(page):
    page.get_by_role("tab", name="Sentiment").click()
    page.locator("#review textarea").fill("The first hour is slow, yet the last act is wonderful.")
    before = page.locator("#trajectory").inner_html()
    _click_and_wait_for_change(page, "score-button", "moves")
    page.wait_for_function("document.querySelector('#verdict textarea').value.includes('IMDB')")
    assert _value_of(page, "verdict").startswith("positive")
    assert page.locator("#moves .token-move", has_text="wonderful").count() == 1
    # The new plot's container comes first; Vega draws its SVG into it a moment later.
    page.wait_for_function(
        "([id, before]) => { const plot = document.getElementById(id);"
        " return plot.innerHTML !== before && plot.querySelector('svg') !== null; }",
        arg=["trajectory", before],
    )


def test_models_tab_shows_each_card(page):
    page.get_by_role("tab", name="Models").click()
    # "translation ·": the default translator's own card, not the word model's longer title.
    titles = ["Spanish → English translation ·", "Image captioning (Flickr8k)", "(NSMC)", "(IMDB)"]
    if (ROOT / "saved_models" / "translate_spa_en_word" / "saved_model.pb").exists():
        titles.append("whole words")
    for title in titles:
        header = page.locator("#tab-models").get_by_text(title, exact=False).first
        header.wait_for(state="visible")
        assert " MB" in header.inner_text()  # installed: its folder and size


def test_a_failed_request_clears_the_previous_result(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill("¿Dónde está la biblioteca?")
    page.locator("#translate-button").click()
    page.wait_for_function("document.querySelector('#translation textarea').value.includes('library')")
    page.locator("#spanish textarea").fill("")
    page.locator("#translate-button").click()
    page.wait_for_function("document.querySelector('#translation textarea').value === ''")
    page.wait_for_function("!document.querySelector('#attention table')")


def test_a_counter_counts_characters_and_says_when_the_box_is_full(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill("Me gusta leer.")
    page.get_by_text("14 / 2,000 characters").first.wait_for()
    page.locator("#spanish textarea").fill("a" * 2500)  # the box keeps the first 2,000
    page.get_by_text("2,000 / 2,000 characters · the box holds no more").first.wait_for()


def test_a_paragraph_is_translated_whole_and_the_result_says_what_the_model_ignored(page):
    page.get_by_role("tab", name="Translate").click()
    page.locator("#spanish textarea").fill(" ".join(["Hola 你好 amigo."] * 10))  # 10 sentences, 40 tokens
    page.locator("#translate-button").click()
    page.locator("#attention .notice-ignored").wait_for()
    assert "你好" in page.locator("#attention .notice-ignored").inner_text()
    # Every sentence is translated: the heatmap has a column for each source token.
    header = page.locator("#attention tr").first.locator("th")
    assert header.filter(has_text="你好").count() == 10


def test_a_review_with_nothing_the_model_can_read_gets_nothing_to_score(page):
    page.get_by_role("tab", name="Sentiment").click()
    page.locator("#review textarea").fill("😀😀🎉")
    page.locator("#score-button").click()
    page.wait_for_function("document.querySelector('#verdict textarea').value.startsWith('nothing to score')")
    assert page.locator("#moves .token-move").count() == 0


def test_a_partly_readable_jpeg_says_so(page, tmp_path):
    cut = tmp_path / "cut.jpg"
    whole = (ROOT / "ui" / "examples" / "astronaut.jpg").read_bytes()
    cut.write_bytes(whole[: len(whole) // 3])
    page.get_by_role("tab", name="Caption").click()
    _clear_image(page)
    page.locator("#caption-image input[type=file]").set_input_files(str(cut))
    page.locator("#caption-button").click()
    page.locator("#looked .notice-partial-image").wait_for()
    assert "Only part of this image could be read" in page.locator("#looked").inner_text()


def test_greedy_mode_shows_no_n_best_table(page):
    page.get_by_role("tab", name="Translate").click()
    page.get_by_label("greedy").first.check()
    page.locator("#nbest").wait_for(state="hidden")
    page.get_by_label("beam", exact=True).first.check()
    page.locator("#nbest").wait_for(state="visible")
    page.get_by_label("greedy").first.check()


def test_models_tab_shows_compact_cards(page):
    page.get_by_role("tab", name="Models").click()
    for key in ("translate", "sentiment_nsmc", "sentiment_imdb", "caption"):
        card = page.locator(f"#card-{key}")
        card.wait_for()
        assert card.locator("table").count() == 1 and card.locator("details summary").count() == 1
        assert card.locator("table tr").count() <= 4  # one row per decoding or split
        assert "final_val_loss" not in card.inner_text() and "bleu_signature" not in card.inner_text()


def test_screenshot_every_tab(page, tmp_path):
    folder = Path(os.environ.get("SEQ2SEQ_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.get_by_role("tab", name="Translate").click()
    page.get_by_label("beam", exact=True).first.check()
    page.locator("#spanish textarea").fill("¿Dónde está la biblioteca?")
    page.locator("#translate-button").click()
    page.wait_for_function("document.querySelector('#translation textarea').value.includes('library')")
    page.locator("#attention table.attention-heatmap").wait_for()
    page.locator("#nbest", has_text="library").wait_for()
    page.wait_for_timeout(500)  # the page's progress animations end
    page.screenshot(path=str(folder / "translate.png"), full_page=True)
    page.get_by_label("greedy").first.check()
    page.get_by_role("tab", name="Caption").click()
    _clear_image(page)
    page.locator("#caption-image input[type=file]").set_input_files(
        str(ROOT / "ui" / "examples" / "photographer.jpg")
    )
    page.locator("#caption-image img").first.wait_for()
    _caption_after_click(page)
    page.locator("#looked .attention-legend").wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / "caption.png"), full_page=True)
    page.get_by_role("tab", name="Sentiment").click()
    page.locator("#review textarea").fill("The first hour is slow, yet the last act is wonderful.")
    _click_and_wait_for_change(page, "score-button", "moves")
    page.locator("#trajectory svg").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / "sentiment.png"), full_page=True)
    page.get_by_role("tab", name="Models").click()
    page.locator("#card-caption").wait_for()
    page.screenshot(path=str(folder / "models.png"), full_page=True)
    assert all(
        (folder / f"{tab}.png").stat().st_size > 10_000
        for tab in ("translate", "caption", "sentiment", "models")
    )
