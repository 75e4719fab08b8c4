"""Checkpoint averaging: the mean of the last epochs' weights, kept when it scores better.

A run trained with a high, constant learning rate ends its epochs at points scattered around a
minimum; their mean lies nearer its centre (Polyak averaging over epochs, as NMT toolkits average
their last checkpoints). Keras keeps no per-epoch weights and averages nothing, hence this module:
`KeepEpochWeights` saves the last epochs' weights, and `average_if_better` puts their mean into
the model when its validation loss beats the best single epoch's.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def epoch_weights_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "epochs"


class KeepEpochWeights(keras.callbacks.Callback):
    """Saves the model's weights at the end of every epoch as `epoch-NNNN.weights.h5`, keeping the
    last `keep`.

    Args:
        directory: where the files go.
        keep: how many of the latest epochs to keep.

    Example:
    >>> KeepEpochWeights(Path("runs/translate/epochs"), keep=5).keep
    5
    """

    def __init__(self, directory: Path, keep: int):
        super().__init__()
        self.directory = Path(directory)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(self.directory / f"epoch-{epoch + 1:04d}.weights.h5")
        for old in saved_epochs(self.directory)[: -self.keep]:
            old.unlink()


def saved_epochs(directory: Path) -> list[Path]:
    """The epoch weights in `directory`, oldest first."""
    return sorted(Path(directory).glob("epoch-*.weights.h5"))


def average_if_better(model: keras.Model, directory: Path, keep: int, validation: tf.data.Dataset) -> dict:
    """Replaces `model`'s weights (the best epoch's) by the mean of the last `keep` saved epochs'
    when that mean has the lower validation loss; returns what was compared and chosen."""
    paths = saved_epochs(directory)[-keep:]
    if len(paths) < 2:
        return {"averaged_epochs": len(paths), "used": False}
    best = [w.numpy() for w in model.weights]
    best_loss = _loss(model, validation)
    total = [np.zeros(w.shape, np.float64) for w in model.weights]
    for path in paths:
        model.load_weights(path)
        for t, w in zip(total, model.weights):
            t += w.numpy()
    for t, w in zip(total, model.weights):
        w.assign((t / len(paths)).astype(w.dtype))
    mean_loss = _loss(model, validation)
    used = mean_loss < best_loss
    if not used:
        for value, w in zip(best, model.weights):
            w.assign(value)
    epochs = [int(p.name.split("-")[1].split(".")[0]) for p in paths]
    return {"averaged_epochs": epochs, "val_loss_mean": mean_loss, "val_loss_best": best_loss, "used": used}


def _loss(model: keras.Model, validation: tf.data.Dataset) -> float:
    return float(model.evaluate(validation, verbose=0, return_dict=True)["loss"])
