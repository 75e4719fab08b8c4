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


def test_missing_model_is_a_message_not_a_crash():
    with pytest.raises(handlers.InputError, match="training.translate"):
        handlers.translate(None, "hola")


def test_demo_builds_without_models(tmp_path):
    from ui.app import build_demo, load_models

    models = load_models(tmp_path)
    assert models["translate"] is None
    assert build_demo(models) is not None
