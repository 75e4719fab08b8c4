"""Shared loading for the Python APIs over exported SavedModels."""

from __future__ import annotations

import json
from pathlib import Path


class LoadedModel:
    """A SavedModel directory loaded with `tf.saved_model.load`, plus its model card.

    Args:
        path: the SavedModel directory.
        train_command: the command that trains one, for the error message when it is missing.

    Example:
    >>> model = LoadedModel("saved_models/sentiment_nsmc", "python -m training.sentiment")  # doctest: +SKIP
    >>> model.card["task"]  # doctest: +SKIP
    'sentiment'
    """

    def __init__(self, path: str | Path, train_command: str):
        import tensorflow as tf

        self.path = Path(path)
        if not (self.path / "saved_model.pb").exists():
            raise FileNotFoundError(f"no SavedModel at {self.path}; train one with `{train_command}`")
        self._module = tf.saved_model.load(str(self.path))
        card = self.path / "model_card.json"
        self.card = json.loads(card.read_text(encoding="utf-8")) if card.exists() else {}

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
