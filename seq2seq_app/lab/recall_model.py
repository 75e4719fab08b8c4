"""A recurrent classifier for `tasks.delayed_recall`, its training and its accuracy."""

from __future__ import annotations

import keras
import numpy as np

from seq2seq_app.lab.cells import RELU_GAIN, lab_rnn
from seq2seq_app.lab.tasks import delayed_recall


def build_recall_model(
    cell: str, units: int, length: int, outputs: int, symbols: int = 4, relu_gain: float = RELU_GAIN
) -> keras.Model:
    """One recurrent layer (named "rnn") and a linear head (named "head") on its last output.

    Returns a model from one-hot sequences [batch, length, symbols] to logits
    [batch, outputs, symbols], one distribution per recalled position.
    """
    inputs = keras.Input((length, symbols))
    sequence, *_ = lab_rnn(cell, units, relu_gain=relu_gain, name="rnn")(inputs)
    logits = keras.layers.Dense(outputs * symbols, name="head")(sequence[:, -1])
    return keras.Model(inputs, keras.layers.Reshape((outputs, symbols))(logits))


def fit_recall(
    model: keras.Model,
    rng: np.random.Generator,
    lags: list[int],
    steps: int,
    batch: int = 32,
    symbols: int = 4,
    learning_rate: float = 0.01,
) -> None:
    """`steps` Adam updates on fresh batches (no example is seen twice, so no overfitting).

    Gradients are clipped to norm 1: without it one exploding relu step turns every weight to NaN.
    """
    length = model.input_shape[1]
    x, y = delayed_recall(rng, steps * batch, length, lags, symbols)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0), loss=loss)
    # Built here, not inside the first step's trace, where creating its variables would make
    # TensorFlow trace the step twice.
    model.optimizer.build(model.trainable_variables)
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)


def recall_accuracy(
    model: keras.Model, rng: np.random.Generator, lags: list[int], examples: int = 512, symbols: int = 4
) -> list[float]:
    """Accuracy per lag on fresh sequences."""
    x, y = delayed_recall(rng, examples, model.input_shape[1], lags, symbols)
    # One eager call: `predict` would trace a graph for each model, costing more than the call.
    predicted = np.asarray(model(x, training=False)).argmax(-1)
    return [float(a) for a in (predicted == y).mean(axis=0)]
