"""Python API over an exported sentiment SavedModel (the same artifact any TF program loads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.loaded_model import LoadedModel


class LoadedSentimentClassifier(LoadedModel):
    """Scores reviews with a SavedModel written by `seq2seq_app.sentiment.sentiment_export.SentimentExport`.

    Args:
        path: a SavedModel directory, a shipped model's name, or None for the shipped `sentiment_nsmc`.

    Example:
    >>> classifier = LoadedSentimentClassifier("sentiment_nsmc")  # doctest: +SKIP
    >>> classifier.classify("와! 진짜 화날 정도로 재밌네요")["label"]  # doctest: +SKIP
    'positive'
    """

    default_model = "sentiment_nsmc"
    train_command = "python -m training.sentiment"

    def classify(self, texts: str | Sequence[str], batch_size: int = 256) -> dict | list[dict]:
        """Scores one review (returns a dict) or a sequence of reviews (returns a list of dicts).

        Each dict has `score` (probability positive), `label`, `tokens` (the units read) and
        `token_scores` (the score after each token).
        """
        self.check_batch_size(batch_size)
        single = isinstance(texts, (str, bytes))
        batch = self.check_texts([texts] if single else texts)
        results = []
        for i in range(0, len(batch), batch_size):
            out = self.run(batch[i : i + batch_size])
            for j in range(len(out["score"])):
                n = int(np.count_nonzero(out["tokens"][j] != b""))
                results.append(
                    {
                        "score": float(out["score"][j]),
                        "label": out["label"][j].decode(),
                        "tokens": [t.decode("utf-8") for t in out["tokens"][j][:n]],
                        "token_scores": [float(s) for s in out["token_scores"][j][:n]],
                    }
                )
        return results[0] if single else results

    def run(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The `classify` signature's outputs as numpy arrays."""
        text = tf.constant(self.check_texts(texts), tf.string)
        return {k: v.numpy() for k, v in self._module.signatures["classify"](text=text).items()}


def load_sentiment_classifier(path: str | Path | None = None) -> LoadedSentimentClassifier:
    """Loads a sentiment SavedModel (default: the shipped `sentiment_nsmc`); see the class."""
    return LoadedSentimentClassifier(path)
