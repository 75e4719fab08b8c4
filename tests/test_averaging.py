"""Checkpoint averaging: the last epochs' weights kept, and their mean used only when it scores better."""

import argparse

import keras
import numpy as np
import tensorflow as tf

from training.averaging import KeepEpochWeights, average_if_better, saved_epochs
from training.callbacks import fit_callbacks
from training.run_state import RunState
from training.strategy import Worker


def _line(weight: float) -> keras.Model:
    """y = weight · x, compiled with a squared error."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(loss="mse")
    model.layers[0].kernel.assign([[weight]])
    return model


def _validation() -> tf.data.Dataset:
    x = np.arange(1, 9, dtype="float32")[:, None]
    return tf.data.Dataset.from_tensor_slices((x, x)).batch(4)  # the truth is y = x


def _save_epochs(directory, weights):
    for i, w in enumerate(weights, 1):
        np.savez(directory / f"epoch-{i:04d}.npz", np.array([[w]], "float32"))


def test_only_the_last_epochs_weights_are_kept(tmp_path):
    model = _line(1.0)
    x = np.ones((4, 1), "float32")
    model.fit(x, x, epochs=5, verbose=0, callbacks=[KeepEpochWeights(tmp_path / "epochs", keep=3)])
    assert [p.name for p in saved_epochs(tmp_path / "epochs")] == [f"epoch-{e:04d}.npz" for e in (3, 4, 5)]


def test_the_mean_of_the_last_epochs_replaces_the_best_epoch_only_when_it_scores_better(tmp_path):
    _save_epochs(tmp_path, [0.0, 0.5, 1.5])  # the last two average to the truth
    model = _line(1.2)  # the best single epoch
    record = average_if_better(model, tmp_path, 2, _validation())
    assert record["used"] and record["averaged_epochs"] == [2, 3]
    assert record["val_loss_mean"] < record["val_loss_best"]
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), [[1.0]])

    model = _line(1.0)
    record = average_if_better(model, tmp_path, 3, _validation())  # mean 0.67: worse
    assert not record["used"] and record["averaged_epochs"] == [1, 2, 3]
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), [[1.0]])  # the best epoch, as it was


def test_one_saved_epoch_is_nothing_to_average(tmp_path):
    _save_epochs(tmp_path, [0.5])
    model = _line(1.0)
    assert average_if_better(model, tmp_path, 5, _validation()) == {"averaged_epochs": [1], "used": False}
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), [[1.0]])


def test_the_run_keeps_epoch_weights_only_when_asked_to_average(tmp_path):
    worker = Worker(tf.distribute.get_strategy())
    for average_last, kept in ((0, False), (1, False), (4, True)):
        args = argparse.Namespace(checkpoint_every=5, patience=2, average_last=average_last)
        callbacks = fit_callbacks(args, tmp_path, RunState(tmp_path), worker)
        keeping = [c for c in callbacks if isinstance(c, KeepEpochWeights)]
        assert bool(keeping) == kept and all(c.keep == average_last for c in keeping)
