import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from ui import catalog, handlers, views

SHIPPED = Path(__file__).resolve().parent.parent / "saved_models"


@pytest.fixture(scope="module")
def translator(trained_export):
    from seq2seq_app import LoadedTranslator

    return LoadedTranslator(trained_export[0])


# Loaded once per module: a load and each signature's first call cost seconds.
@pytest.fixture(scope="module")
def classifier(sentiment_export):
    from seq2seq_app import LoadedSentimentClassifier

    return LoadedSentimentClassifier(sentiment_export[0])


@pytest.fixture(scope="module")
def captioner(caption_export):
    from seq2seq_app import LoadedCaptioner

    return LoadedCaptioner(caption_export[0])


def test_translate_handler_modes(translator):
    text, rows, heatmap = handlers.translate(translator, "El gato come pan .", "greedy")
    assert isinstance(text, str) and rows == []
    assert heatmap.count("<tr>") >= 2 and views.END in heatmap
    text, rows, _ = handlers.translate(translator, "El gato come pan .", "beam", beam_size=3)
    assert 1 <= len(rows) <= 3 and rows[0][1] == text
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    assert isinstance(handlers.translate(translator, "Tom bebe agua .", "sample", temperature=1.0)[0], str)


def test_heatmap_has_a_row_per_output_token_and_a_column_per_source_token(translator):
    out = translator.run(["El gato come pan ."])
    _, _, heatmap = handlers.translate(translator, "El gato come pan .")
    words = len(out["translation"][0].decode().split())
    source_columns = np.count_nonzero(out["source_tokens"][0] != b"") + 1  # + the end marker
    body = heatmap.split("</tr>", 1)[1]
    assert body.count("<tr>") in (words, words + 1)  # the end marker row, unless decoding hit the cap
    assert body.count("<td") == body.count("<tr>") * source_columns


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Type a sentence"),
        ("   ", "Type a sentence"),
        (None, "Type a sentence"),
        ("a" * (handlers.MAX_TEXT_CHARS + 1), "limit"),
    ],
)
def test_translate_handler_rejects_bad_text(translator, text, message):
    with pytest.raises(handlers.InputError, match=message):
        handlers.translate(translator, text)


def test_unknown_decoding_modes_are_refused(translator):
    with pytest.raises(handlers.InputError, match="decoding mode 'nucleus'"):
        handlers.translate(translator, "hola", "nucleus")


def test_views_escape_user_text():
    hostile = "<script>alert(1)</script>"
    heatmap = views.attention_heatmap([hostile, ""], ["<b>"], np.array([[0.25, 0.75]]))
    assert "<script>" not in heatmap and "&lt;script&gt;" in heatmap and "&lt;b&gt;" in heatmap
    assert 'title="0.250"' in heatmap and 'title="0.750"' in heatmap
    chips = views.token_moves([hostile, "ok"], [-0.2, 0.1])
    assert "<script>" not in chips and chips.count('class="token-move"') == 2


def test_attention_overlays_dim_what_the_model_did_not_look_at():
    import base64
    import io

    from PIL import Image

    from seq2seq_app.captioning.shapes import make_shapes_dataset

    attention = np.zeros((2, 4))
    attention[0, 0] = attention[1, 3] = 1.0  # 2×2 regions: top-left, then bottom-right
    page = views.attention_overlays(make_shapes_dataset(1).images[0], attention, ["<one>", "two"])
    assert "&lt;one&gt;" in page and "<one>" not in page
    masks = [
        Image.open(io.BytesIO(base64.b64decode(uri.split('"')[0])))
        for uri in page.split("data:image/png;base64,")[1:]
    ]
    alpha = [np.asarray(m)[..., 3] for m in masks]
    assert alpha[0].shape == (2, 2) and alpha[0][0, 0] == 0 and alpha[0][1, 1] == views.MASK_ALPHA
    assert alpha[1][1, 1] == 0 and alpha[1][0, 0] == views.MASK_ALPHA
    assert "attention-legend" in page


def test_thinly_spread_attention_still_spans_dark_to_clear():
    from seq2seq_app.captioning.shapes import make_shapes_dataset

    weights = np.full((1, 49), 1 / 49) + np.linspace(-0.002, 0.002, 49)  # almost uniform, as trained
    page = views.attention_overlays(make_shapes_dataset(1).images[0], weights, ["dog"])
    import base64
    import io

    from PIL import Image

    mask = Image.open(io.BytesIO(base64.b64decode(page.split("data:image/png;base64,")[1].split('"')[0])))
    alpha = np.asarray(mask)[..., 3]
    assert alpha.min() == 0 and alpha.max() == views.MASK_ALPHA


def _encoded(mode: str, size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    colour = {"RGB": (200, 30, 30), "L": 90, "P": 3, "RGBA": (200, 30, 30, 0), "LA": (90, 255)}[mode]
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode, size",
    [
        ("RGB", (1, 1)),
        ("L", (40, 30)),
        ("P", (30, 40)),
        ("RGBA", (20, 20)),
        ("LA", (20, 20)),
        ("RGB", (2, 3000)),
    ],
)
def test_attention_overlays_draw_every_kind_of_image(mode, size):
    page = views.attention_overlays(_encoded(mode, size), np.full((3, 49), 1 / 49), ["a", "b", "c"])
    assert page.count('class="attention-word"') == 3 and page.count("data:image/jpeg") == 1
    height = int(page.split("height:", 1)[1].split("px", 1)[0])
    assert 1 <= height <= 3 * 180


def test_transparent_pixels_are_drawn_on_white_as_the_model_saw_them():
    import base64
    import io

    from PIL import Image

    page = views.attention_overlays(_encoded("RGBA", (8, 8)), np.full((1, 4), 0.25), ["a"])
    photo = page.split("data:image/jpeg;base64,", 1)[1].split(")", 1)[0]
    assert np.asarray(Image.open(io.BytesIO(base64.b64decode(photo)))).min() > 240


def test_attention_that_is_not_a_square_grid_gets_a_note_not_a_crash():
    page = views.attention_overlays(_encoded("RGB", (8, 8)), np.full((2, 48), 1 / 48), ["a", "b"])
    assert "not a square grid" in page and "attention-word" not in page


def test_nan_weights_are_drawn_as_zero():
    assert "nan" not in views.attention_heatmap(["a"], ["b"], np.array([[np.nan]]))
    assert "nan" not in views.token_moves(["a", "b"], [float("nan"), 0.2])


def test_token_moves_colour_by_direction_and_relative_size():
    chips = views.token_moves(["bad", "good", "so-so"], [-0.4, 0.2, 0.0])
    bad, good, neutral = chips.split('class="token-move"')[1:]
    assert "rgba(220,38,38,0.85)" in bad and "rgba(22,163,74,0.42)" in good and ",0.00)" in neutral
    assert views.token_moves([], []).count("token-move") == 1  # just the empty container


def test_missing_models_are_a_message_not_a_crash():
    with pytest.raises(handlers.InputError, match="training.translate"):
        handlers.translate(None, "hola")
    with pytest.raises(handlers.InputError, match="training.sentiment"):
        handlers.classify({}, "좋다")
    with pytest.raises(handlers.InputError, match="training.caption"):
        handlers.caption(None, b"...")


def test_sentiment_model_choice():
    assert handlers.pick_sentiment_model("영화 좋다") == "sentiment_nsmc"
    assert handlers.pick_sentiment_model("a fine film, 좋다") == "sentiment_nsmc"
    assert handlers.pick_sentiment_model("a fine film") == "sentiment_imdb"
    assert handlers.pick_sentiment_model("영화", "sentiment_imdb") == "sentiment_imdb"
    with pytest.raises(handlers.InputError, match="Unknown sentiment model"):
        handlers.pick_sentiment_model("film", "bert")


def test_demo_builds_without_models(tmp_path):
    from ui.app import build_demo

    models = catalog.load_models(tmp_path)
    assert models == {entry.key: None for entry in catalog.CATALOG}
    assert build_demo(models) is not None
    for entry in catalog.CATALOG:
        block = catalog.model_card(entry.key, None).split("```bash\n", 1)[1].split("```", 1)[0]
        joined = block.replace("\\\n", " ")  # what the shell does with a backslash-newline
        assert shlex.split(joined) == shlex.split(entry.train_command)
        assert catalog.card_title(entry.key, None).endswith("not installed")


@pytest.mark.parametrize("entry", catalog.CATALOG, ids=lambda e: e.key)
def test_train_commands_are_the_ones_that_trained_the_shipped_models(entry):
    card = SHIPPED / entry.folder / "model_card.json"
    if not card.exists():
        pytest.skip(f"{entry.folder} is not shipped")
    shipped = json.loads(card.read_text(encoding="utf-8"))["training"]["command"]
    assert shlex.split(entry.train_command) == shlex.split(shipped)


def test_model_card_of_an_installed_model(classifier):
    assert " MB" in catalog.card_title("sentiment_nsmc", classifier)
    card = catalog.model_card("sentiment_nsmc", classifier)
    assert "command" in card and "\n# " not in card  # the card's headings are demoted under the tab's


def test_classify_handler_gives_verdict_moves_and_trajectory(classifier):
    classifiers = {"sentiment_nsmc": classifier, "sentiment_imdb": None}
    verdict, moves, trajectory = handlers.classify(classifiers, "이번 영화 최고")
    assert verdict.startswith(("positive", "negative")) and "% positive" in verdict and "NSMC" in verdict
    assert list(trajectory["token"]) == ["이", "번", "영", "화", "최", "고"]
    assert list(trajectory["position"]) == [1, 2, 3, 4, 5, 6]
    assert trajectory["score"].between(0, 1).all()
    assert moves.count('class="token-move"') == 6
    first_move = float(moves.split('title="', 1)[1].split('"', 1)[0])
    assert first_move == pytest.approx(trajectory["score"][0] - 0.5, abs=2e-3)
    with pytest.raises(handlers.InputError, match="IMDB.*not installed"):
        handlers.classify(classifiers, "a great film")
    for text, message in [("", "Type a review"), ("a" * (handlers.MAX_TEXT_CHARS + 1), "limit")]:
        with pytest.raises(handlers.InputError, match=message):
            handlers.classify(classifiers, text)


def test_caption_handler_gives_caption_and_overlays(captioner):
    from seq2seq_app.captioning.shapes import make_shapes_dataset

    image = make_shapes_dataset(1, seed=4).images[0]
    text, overlays = handlers.caption(captioner, image, "beam", 2)
    words = len(text.rstrip(".").split()) + text.endswith(".")
    assert text and overlays.count('class="attention-word"') == words
    assert overlays.count("data:image/jpeg") == 1 and overlays.count("data:image/png") == words
    for bad, message in [
        (None, "Upload"),
        (b"plain text", "not an image"),
        (b"\xff\xd8\xff" + b"garbage" * 9, "not a readable image"),
        (b"\x00" * (handlers.MAX_IMAGE_BYTES + 1), "limit"),
    ]:
        with pytest.raises(handlers.InputError, match=message):
            handlers.caption(captioner, bad)
    with pytest.raises(handlers.InputError, match="decoding mode"):
        handlers.caption(captioner, image, "sample")


def test_caption_handler_reads_files_and_checks_their_size_first(captioner, tmp_path, monkeypatch):
    from seq2seq_app.captioning.shapes import make_shapes_dataset

    path = tmp_path / "shapes.png"
    path.write_bytes(make_shapes_dataset(1, seed=4).images[0])
    assert handlers.caption(captioner, path)[0] == handlers.caption(captioner, path.read_bytes())[0]
    monkeypatch.setattr(handlers, "MAX_IMAGE_BYTES", 100)
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read before the size check"))
    with pytest.raises(handlers.InputError, match="limit is"):
        handlers.caption(captioner, str(path))


def test_shipped_example_images_are_credited():
    from ui.demo_inputs import EXAMPLES_DIR

    credits = (EXAMPLES_DIR / "CREDITS.md").read_text(encoding="utf-8")
    images = sorted(EXAMPLES_DIR.glob("*.jpg"))
    assert images and all(f"`{p.name}`" in credits for p in images)


class _CutTranslator:
    """The translator, with every output reported as cut at the length cap."""

    def __init__(self, translator):
        self.translator = translator

    def run(self, texts, **kwargs):
        return {**self.translator.run(texts, **kwargs), "truncated": np.ones(len(texts), bool)}

    def in_vocabulary(self, tokens):
        return self.translator.in_vocabulary(tokens)

    @property
    def limits(self):
        return self.translator.limits


def test_the_cut_notice_names_the_models_own_caps():
    cut = {"truncated": np.array([True])}
    limits = {"max_text_tokens": 5, "max_text_units": 32}
    assert "at most 5 words" in handlers._cut_note(cut, ["a"] * 5, 1, limits)
    assert "length limit" in handlers._cut_note(cut, ["a"] * 4, 1, limits)
    assert handlers._cut_note({"truncated": np.array([False])}, ["a"] * 5, 1, limits) == ""


def test_translation_names_unknown_words_and_says_when_an_output_was_cut(translator):
    _, _, page = handlers.translate(translator, "El gato 你好 come pan .")
    assert 'class="notice notice-ignored"' in page and "你好" in page.split("</p>")[0]
    assert ("notice-cut" in page) == bool(translator.run(["El gato 你好 come pan ."])["truncated"][0])
    _, _, page = handlers.translate(_CutTranslator(translator), "El gato come pan .")
    assert 'class="notice notice-cut"' in page and "length limit" in page
    _, _, page = handlers.translate(translator, ("y, " * 700)[: handlers.MAX_TEXT_CHARS])  # 1,333 tokens
    assert 'class="notice notice-cut"' in page and "at most 1,000 words" in page


def test_a_long_text_shows_the_first_sentences_of_its_heatmap(translator):
    _, _, page = handlers.translate(translator, "El gato come pan. " * 30)
    assert "The heatmap shows the first" in page
    header = page.split("</tr>")[0]
    assert header.count("<th") <= handlers.HEATMAP_COLUMNS + 1  # the corner cell and the columns


def test_a_review_with_nothing_the_model_can_read_is_not_given_a_verdict(classifier):
    classifiers = {"sentiment_nsmc": classifier}
    verdict, moves, trajectory = handlers.classify(classifiers, "😀🎉😀", "sentiment_nsmc")
    assert verdict.startswith("nothing to score") and "notice-nothing" in moves and trajectory.empty
    verdict, moves, _ = handlers.classify(classifiers, "이번 영화 최고 😀", "sentiment_nsmc")
    assert verdict.startswith(("positive", "negative"))
    assert 'class="notice notice-ignored"' in moves and "😀" in moves.split("</p>")[0]


def test_an_image_that_only_partly_decodes_says_so(captioner):
    import io

    from PIL import Image

    from seq2seq_app.captioning.shapes import make_shapes_dataset

    buffer = io.BytesIO()
    Image.open(io.BytesIO(make_shapes_dataset(1, seed=4).images[0])).convert("RGB").save(buffer, "JPEG")
    cut = buffer.getvalue()[:-2]  # no end-of-image marker: the model recovers it, PIL does not
    text, overlays = handlers.caption(captioner, cut)
    assert text and "partial-image" in overlays and "Only part of this image could be read" in overlays


def test_warm_up_calls_every_signature(translator, classifier, captioner, monkeypatch):
    models = {
        "translate": translator,
        "translate_word": None,
        "sentiment_nsmc": classifier,
        "sentiment_imdb": None,
        "caption": captioner,
    }
    called = []
    for key, model in models.items():
        if model is not None:
            run = model.run
            monkeypatch.setattr(
                model, "run", lambda *a, _run=run, _key=key, **k: called.append(_key) or _run(*a, **k)
            )
    handlers.warm_up(models)
    assert called.count("translate") == len(handlers.DECODING_MODES)
    assert called.count("caption") == len(handlers.CAPTION_MODES) and called.count("sentiment_nsmc") == 1


def test_refused_inputs_log_one_line_and_failures_a_traceback(caplog):
    import gradio as gr

    from ui.app import _shown_errors

    def refuse():
        raise handlers.InputError("Type a sentence first.")

    def crash():
        raise RuntimeError("a bug")

    for fn in (refuse, crash):
        with pytest.raises(gr.Error):
            _shown_errors("Translation", fn)()
    refused, failed = caplog.records
    assert refused.getMessage() == "Translation refused: Type a sentence first." and refused.exc_info is None
    assert failed.exc_info is not None and failed.exc_info[0] is RuntimeError


def test_model_cards_are_compact_with_rounded_metrics_and_a_folded_command(trained_export):
    from seq2seq_app import LoadedTranslator

    model = LoadedTranslator(trained_export[0])
    card = catalog.model_card("translate", model)
    assert "| greedy |" in card and "<details><summary>Training command</summary>" in card
    import html

    assert html.escape(model.card["training"]["command"], quote=False) in card.split("<details>")[1]
    table = catalog.metrics_table(model.card["metrics"])
    numbers = [
        cell.strip() for row in table.splitlines()[2:] for cell in row.split("|")[2:-1] if cell.strip()
    ]
    assert numbers and all("." not in n or len(n.split(".")[1]) == 1 for n in numbers)
    assert "seconds" not in table and "signature" not in table


def test_a_choice_outside_the_buttons_is_refused_with_one_log_line(caplog):
    import gradio as gr

    from ui.choice import Choice

    with gr.Blocks():
        choice = Choice(["greedy", "beam"], value="greedy", label="Decoding")
    assert choice.preprocess("beam") == "beam"
    with pytest.raises(gr.Error) as refused:
        choice.preprocess("nonsense")
    assert refused.value.print_exception is False and "not in the list of choices" in refused.value.message
    (record,) = caplog.records
    assert record.getMessage().startswith("Decoding refused:") and record.exc_info is None
