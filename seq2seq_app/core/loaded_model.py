"""Shared loading for the Python APIs over exported SavedModels: where a model is, and loading it."""

from __future__ import annotations

import json
from pathlib import Path

# The models a checkout may ship, beside the package (an editable install points here).
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "saved_models"
SHIPPED_MODELS = (
    "translate_spa_en",
    "translate_spa_en_word",
    "sentiment_nsmc",
    "sentiment_imdb",
    "caption_flickr8k",
)


def resolve_model_path(model: str | Path | None, default: str) -> Path:
    """The SavedModel folder for a path, a shipped model's name, or None (the `default` shipped model).

    A name is looked up in the shipped models, so it works from any directory; a folder of that
    name holding a SavedModel in the current directory still wins, as any path does.

    Args:
        model: a SavedModel folder, one of `SHIPPED_MODELS`, or None.
        default: the shipped model's name to use for None.

    Example:
    >>> resolve_model_path(None, "translate_spa_en") == SHIPPED_DIR / "translate_spa_en"
    True
    >>> resolve_model_path("my_runs/export", "translate_spa_en")
    PosixPath('my_runs/export')
    """
    name = default if model is None else str(model)
    if name in SHIPPED_MODELS and not (Path(name) / "saved_model.pb").exists():
        return SHIPPED_DIR / name
    return Path(name)


def missing_model_message(path: Path, train_command: str) -> str:
    """Why nothing loads from `path`, with the shipped models one can load by name instead."""
    shipped = [name for name in SHIPPED_MODELS if (SHIPPED_DIR / name / "saved_model.pb").exists()]
    where = (
        f"shipped models (load one by name): {', '.join(shipped)}"
        if shipped
        else f"no shipped models found in {SHIPPED_DIR}"
    )
    return f"no SavedModel at {path}; {where}; or train one with `{train_command}`"


class LoadedModel:
    """A SavedModel directory loaded with `tf.saved_model.load`, plus its model card.

    Subclasses name their task's shipped model (`default_model`) and training command.

    Args:
        path: the SavedModel directory, a shipped model's name, or None for `default_model`.

    Example:
    >>> from seq2seq_app import LoadedSentimentClassifier
    >>> model = LoadedSentimentClassifier("sentiment_imdb")  # doctest: +SKIP
    >>> model.card["task"]  # doctest: +SKIP
    'sentiment'
    """

    default_model: str = ""
    train_command: str = ""

    def __init__(self, path: str | Path | None = None):
        import tensorflow as tf

        self.path = resolve_model_path(path, self.default_model)
        if not (self.path / "saved_model.pb").exists():
            raise FileNotFoundError(missing_model_message(self.path, self.train_command))
        self._module = tf.saved_model.load(str(self.path))
        card = self.path / "model_card.json"
        self.card = json.loads(card.read_text(encoding="utf-8")) if card.exists() else {}

    def in_vocabulary(self, tokens: list[str]) -> list[bool] | None:
        """Whether each token (as the model's lookup sees it) is in the model's input vocabulary.

        None for a model without an input vocabulary table (a captioner). A restored table keeps
        only its resource, so the lookup is the raw op the exported graph itself runs.
        """
        import tensorflow as tf

        table = getattr(self._module, "source_table", None) or next(
            iter(getattr(self._module, "tables", [])), None
        )
        if table is None or not tokens:
            return None if table is None else []
        ids = tf.raw_ops.LookupTableFindV2(
            table_handle=table.resource_handle,
            keys=tf.constant(tokens, tf.string),
            default_value=tf.constant(-1, tf.int64),
        )
        return [bool(i >= 0) for i in ids.numpy()]

    @staticmethod
    def check_texts(texts) -> list:
        """The texts as a list, or a TypeError naming what was passed instead."""
        texts = list(texts)  # once: a generator can be read only once
        for t in texts:
            if not isinstance(t, (str, bytes)):
                raise TypeError(f"texts must be strings, got {type(t).__name__}")
        return texts

    @staticmethod
    def check_batch_size(batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
