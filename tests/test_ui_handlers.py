import pytest

from ui import handlers


def test_translate_handler_modes(trained_export):
    from seq2seq_app import LoadedTranslator

    translator = LoadedTranslator(trained_export[0])
    text, rows = handlers.translate(translator, "El gato come pan .", "greedy")
    assert isinstance(text, str) and rows == []
    text, rows = handlers.translate(translator, "El gato come pan .", "beam", beam_size=3)
    assert len(rows) == 3 and rows[0][0] == text
    assert isinstance(handlers.translate(translator, "Tom bebe agua .", "sample", temperature=1.0)[0], str)


@pytest.mark.parametrize(
    "text, message",
    [("", "Type a sentence"), ("   ", "Type a sentence"), (None, "Type a sentence"),
     ("a" * (handlers.MAX_TEXT_CHARS + 1), "limit")],
)
def test_translate_handler_rejects_bad_text(trained_export, text, message):
    from seq2seq_app import LoadedTranslator

    with pytest.raises(handlers.InputError, match=message):
        handlers.translate(LoadedTranslator(trained_export[0]), text)


def test_missing_models_are_a_message_not_a_crash():
    with pytest.raises(handlers.InputError, match="training.translate"):
        handlers.translate(None, "hola")
    with pytest.raises(handlers.InputError, match="training.sentiment"):
        handlers.classify(None, "좋다")
    with pytest.raises(handlers.InputError, match="training.caption"):
        handlers.caption(None, b"...")


def test_demo_builds_without_models(tmp_path):
    from ui.app import build_demo, load_models

    models = load_models(tmp_path)
    assert models == {"translate": None, "sentiment": None, "caption": None}
    assert build_demo(models) is not None


def test_classify_handler_gives_verdict_moves_and_trajectory(sentiment_export):
    from seq2seq_app import LoadedSentimentClassifier

    classifier = LoadedSentimentClassifier(sentiment_export[0])
    verdict, moves, trajectory = handlers.classify(classifier, "이번 영화 최고")
    assert verdict.startswith(("positive", "negative")) and "% positive" in verdict
    assert [t for t, _ in moves] == ["이", "번", "영", "화", "최", "고"]
    assert [row[1] for row in trajectory] == ["이", "번", "영", "화", "최", "고"]
    assert moves[0][1] == pytest.approx(trajectory[0][2] - 0.5, abs=1e-3)
    for text, message in [("", "Type a review"), ("a" * (handlers.MAX_TEXT_CHARS + 1), "limit")]:
        with pytest.raises(handlers.InputError, match=message):
            handlers.classify(classifier, text)


def test_caption_handler_gives_caption_and_overlays(caption_export):
    from seq2seq_app import LoadedCaptioner
    from seq2seq_app.data.shapes import make_shapes_dataset

    captioner = LoadedCaptioner(caption_export[0])
    image = make_shapes_dataset(1, seed=4).images[0]
    text, overlays = handlers.caption(captioner, image, "beam", 2)
    assert text and len(overlays) == len(text.rstrip(".").split()) + text.endswith(".")
    assert overlays[0][0].ndim == 3 and overlays[0][0].shape[2] == 3
    for bad, message in [(None, "Upload"), (b"plain text", "not an image"),
                         (b"\xff\xd8\xff" + b"garbage" * 9, "not a readable image"),
                         (b"\x00" * (handlers.MAX_IMAGE_BYTES + 1), "limit")]:
        with pytest.raises(handlers.InputError, match=message):
            handlers.caption(captioner, bad)
