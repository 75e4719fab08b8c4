"""Loading the Python API's models by default, by shipped name or by path, from any directory."""

import pytest

from seq2seq_app import (
    LoadedCaptioner,
    LoadedSentimentClassifier,
    LoadedTranslator,
    load_sentiment_classifier,
)
from seq2seq_app.core.loaded_model import SHIPPED_DIR, SHIPPED_MODELS, resolve_model_path

LOADERS = [
    (LoadedTranslator, "translate_spa_en"),
    (LoadedSentimentClassifier, "sentiment_nsmc"),
    (LoadedCaptioner, "caption_flickr8k"),
]


def _shipped(name: str) -> None:
    if not (SHIPPED_DIR / name / "saved_model.pb").exists():
        pytest.skip(f"{name} is not shipped in this checkout")


@pytest.mark.parametrize("loader, default", LOADERS, ids=lambda x: getattr(x, "__name__", x))
def test_each_api_defaults_to_its_shipped_model(loader, default):
    assert loader.default_model == default and default in SHIPPED_MODELS
    assert resolve_model_path(None, loader.default_model) == SHIPPED_DIR / default


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_a_shipped_name_resolves_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path(name, "translate_spa_en") == SHIPPED_DIR / name


def test_a_path_is_a_path_and_a_local_folder_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path(tmp_path / "x", "sentiment_nsmc") == tmp_path / "x"
    (tmp_path / "sentiment_imdb").mkdir()
    (tmp_path / "sentiment_imdb" / "saved_model.pb").write_bytes(b"")
    assert str(resolve_model_path("sentiment_imdb", "sentiment_nsmc")) == "sentiment_imdb"


def test_loading_with_no_argument_or_a_name_from_another_directory(tmp_path, monkeypatch):
    _shipped("sentiment_nsmc")
    monkeypatch.chdir(tmp_path)
    classifier = load_sentiment_classifier()
    assert classifier.path == SHIPPED_DIR / "sentiment_nsmc" and classifier.card["task"] == "sentiment"
    assert classifier.classify("와! 진짜 화날 정도로 재밌네요")["label"] in ("positive", "negative")


def test_a_missing_path_names_the_shipped_models_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_sentiment_classifier("saved_models/sentiment_nsmc")  # a checkout-relative path, elsewhere
    message = str(error.value)
    assert "no SavedModel at saved_models/sentiment_nsmc" in message
    shipped = [n for n in SHIPPED_MODELS if (SHIPPED_DIR / n / "saved_model.pb").exists()]
    assert all(name in message for name in shipped)
    assert message.index("load one by name") < message.index("python -m training.sentiment")
