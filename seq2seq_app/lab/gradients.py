"""Backpropagation through time, measured: ‖∂L/∂h_t‖ for every step t, and the forward state norms."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.lab.cells import LAB_CELLS, RELU, RELU_GAIN, lab_rnn
from seq2seq_app.lab.recall_model import build_recall_model, fit_recall
from seq2seq_app.lab.tasks import delayed_recall


class _ProbedCell(keras.layers.Layer):
    """Runs a built cell and adds a probe e_t to its output, which is also its next h.

    With the probes all zero nothing changes, and ∂L/∂e_t = ∂L/∂h_t: one backward pass gives the
    gradient at every step, the recurrent path included (a layer's output sequence alone would
    only show the direct path from h_t to the loss).
    """

    def __init__(self, cell, features: int, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.features = features
        size = cell.state_size
        self.state_size = list(size) if isinstance(size, list | tuple) else [size]
        self.output_size = cell.output_size

    def build(self, input_shape):
        pass  # the wrapped cell is already built and trained

    def call(self, inputs, states, training=None):
        x, probe = inputs[:, : self.features], inputs[:, self.features :]
        out, new_states = self.cell(x, list(states), training=training)
        out = out + probe
        new_states = list(new_states)
        new_states[0] = out
        return out, new_states


def hidden_gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray) -> list[float | None]:
    """Mean over sequences of ‖∂ℓ/∂h_t‖ (ℓ: that sequence's loss on the last step), for each t.

    Args:
        model: from `build_recall_model`, with one output position.
        x: [batch, length, symbols]; y: [batch, 1] targets.

    Returns:
        `length` floats, entry 0 the first step; None where the value overflowed float32.
    """
    rnn, head = model.get_layer("rnn"), model.get_layer("head")
    batch, length, features = x.shape
    probed = keras.layers.RNN(_ProbedCell(rnn.cell, features), return_sequences=True)
    probe = tf.zeros((batch, length, rnn.cell.output_size))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    @tf.function
    def norms(x, probe):
        with tf.GradientTape() as tape:
            tape.watch(probe)
            sequence = probed(tf.concat([x, probe], axis=-1))
            loss = loss_fn(y[:, 0], head(sequence[:, -1]))  # sum: each h_t,b only reaches ℓ_b
        return tf.reduce_mean(tf.norm(tape.gradient(loss, probe), axis=-1), axis=0)

    return [float(v) if np.isfinite(v) else None for v in np.asarray(norms(tf.constant(x), probe))]


def forward_state_norms(length: int, units: int, seed: int, relu_gain: float, batch: int = 32) -> dict:
    """Mean ‖h_t‖ of a SimpleRNN with tanh and the same one with relu (same weights, same inputs)."""
    keras.utils.set_random_seed(seed)
    x = np.random.default_rng(seed).normal(size=(batch, length, 4)).astype("float32")
    relu = lab_rnn(RELU, units, relu_gain=relu_gain)
    tanh = keras.layers.SimpleRNN(units, return_sequences=True)
    relu(x), tanh(x)
    tanh.set_weights(relu.get_weights())
    result = {}
    for name, layer in (("tanh", tanh), ("relu", relu)):
        values = np.linalg.norm(np.asarray(keras.tree.flatten(layer(x))[0]), axis=-1).mean(axis=0)
        result[name] = [float(v) if np.isfinite(v) else None for v in values]
    return result


def gradients_experiment(
    cells: tuple[str, ...] = LAB_CELLS,
    length: int = 60,
    seed: int = 0,
    units: int = 32,
    train_steps: int = 100,
    batch: int = 32,
    relu_gain: float = RELU_GAIN,
) -> dict:
    """‖∂L/∂h_t‖ per cell at initialisation and after a short training on recalling the first symbol.

    The task: `length` random symbols, predict the first one at the last step, the longest
    memory a sequence of that length can ask for; the loss is on the last step only, so the
    gradient at step t measures how much the first steps can still be learned from.

    Args:
        cells: names from `LAB_CELLS`.
        length: T, steps per sequence (at least 2).
        seed: seeds weights, data and training.
        units: state size.
        train_steps: Adam updates of the short training.
        batch: sequences per update and per measurement.
        relu_gain: gain of the relu cell's orthogonal recurrent matrix.

    Returns:
        {"length": T, "cells": {name: {"init": [T floats], "trained": [T floats]}},
         "forward": {"tanh": [T floats], "relu": [T floats]}, "settings": {...}}; entry t is for
        step t (0 = first); None marks a float32 overflow.

    Example:
    >>> result = gradients_experiment(("lstm",), length=5, units=4, train_steps=2, batch=4)
    >>> len(result["cells"]["lstm"]["init"]), len(result["forward"]["relu"])
    (5, 5)
    """
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    lags = [length - 1]
    result = {"length": length, "cells": {}}
    for i, cell in enumerate(cells):
        keras.utils.set_random_seed(seed + i)
        rng = np.random.default_rng(seed)
        model = build_recall_model(cell, units, length, outputs=1, relu_gain=relu_gain)
        x, y = delayed_recall(np.random.default_rng(seed + 1000), batch, length, lags)
        init = hidden_gradient_norms(model, x, y)
        fit_recall(model, rng, lags, train_steps, batch)
        result["cells"][cell] = {"init": init, "trained": hidden_gradient_norms(model, x, y)}
    result["forward"] = forward_state_norms(length, units, seed, relu_gain)
    result["settings"] = {
        "task": f"recall the first of {length} random symbols (4 kinds) at the last step",
        "units": units,
        "train_steps": train_steps,
        "batch": batch,
        "relu_gain": relu_gain,
        "seed": seed,
    }
    return result
