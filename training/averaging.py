"""Checkpoint averaging: the mean of the last epochs' weights, kept when it scores better.

Epochs trained at a learning rate still too high to settle end at points scattered around a
minimum; their mean lies nearer its centre (averaging the last checkpoints, as NMT toolkits do).
Keras's optimizers can keep a moving average of the weights (`use_ema`), but only from the start
of a run and in every optimizer step; this works on any run, resumed or not, from the weights
each epoch ended with: `KeepEpochWeights` keeps the last epochs' weights, and
`average_if_better` puts their mean into the model when its validation loss beats the best
single epoch's.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def epoch_weights_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "epochs"


class KeepEpochWeights(keras.callbacks.Callback):
    """Saves the model's weights (not the optimizer's state) at the end of every epoch as
    `epoch-NNNN.npz`, keeping the last `keep`.

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
        path = self.directory / f"epoch-{epoch + 1:04d}.npz"
        tmp = path.with_suffix(".tmp.npz")  # a kill mid-write leaves no half file to average
        np.savez(tmp, *[w.numpy() for w in self.model.weights])
        tmp.replace(path)
        for old in saved_epochs(self.directory)[: -self.keep]:
            old.unlink()


def saved_epochs(directory: Path) -> list[Path]:
    """The epoch weights in `directory`, oldest first."""
    return sorted(p for p in Path(directory).glob("epoch-*.npz") if not p.name.endswith(".tmp.npz"))


def average_if_better(model: keras.Model, directory: Path, keep: int, validation: tf.data.Dataset) -> dict:
    """Replaces `model`'s weights (the best epoch's) by the mean of the last `keep` saved epochs'
    when that mean has the lower validation loss; returns what was compared and chosen."""
    paths = saved_epochs(directory)[-keep:]
    epochs = [int(p.stem.split("-")[1]) for p in paths]
    if len(paths) < 2:
        return {"averaged_epochs": epochs, "used": False}
    best = [w.numpy() for w in model.weights]
    best_loss = _loss(model, validation)
    total = [np.zeros(w.shape, np.float64) for w in model.weights]
    for path in paths:
        with np.load(path) as saved:
            for i, t in enumerate(total):
                t += saved[f"arr_{i}"]
    for t, w in zip(total, model.weights):
        w.assign((t / len(paths)).astype(w.dtype))
    mean_loss = _loss(model, validation)
    used = mean_loss is not None and (best_loss is None or mean_loss < best_loss)
    if not used:
        for value, w in zip(best, model.weights):
            w.assign(value)
    return {"averaged_epochs": epochs, "val_loss_mean": mean_loss, "val_loss_best": best_loss, "used": used}


def _loss(model: keras.Model, validation: tf.data.Dataset) -> float | None:
    """The validation loss, None if it is not finite (JSON has no NaN)."""
    loss = float(model.evaluate(validation, verbose=0, return_dict=True)["loss"])
    return loss if math.isfinite(loss) else None
