"""What depth and bidirectionality add: 1 or 2 layers, one or both directions, on delayed recall."""

from __future__ import annotations

import time

import keras
import numpy as np

from seq2seq_app.core.layers.rnn import make_rnn, num_states
from seq2seq_app.lab.recall_model import fit_recall, recall_accuracy

LAGS = (1, 10, 20)
SYMBOLS = 4
CONFIGS = ((1, False), (2, False), (1, True), (2, True))


def build_stack(
    cell: str, units: int, length: int, lags: int, layers: int, bidirectional: bool
) -> keras.Model:
    """A stack of recurrent layers read out from its top layer's final h (both directions' if bi).

    The backward direction's final state has read the sequence from the end back to the first
    step, so it holds what the forward one must carry furthest.
    """
    x = inputs = keras.Input((length, SYMBOLS))
    for i in range(layers):
        rnn = make_rnn(cell, units, name=f"rnn_{i}")
        if bidirectional:
            rnn = keras.layers.Bidirectional(rnn, name=f"birnn_{i}")
        x, *states = rnn(x)
    n = num_states(cell)
    final = keras.layers.Concatenate()([states[0], states[n]]) if bidirectional else states[0]
    logits = keras.layers.Dense(lags * SYMBOLS, name="head")(final)
    return keras.Model(inputs, keras.layers.Reshape((lags, SYMBOLS))(logits))


def depth_experiment(
    cell: str = "gru",
    lags: tuple[int, ...] = LAGS,
    seed: int = 0,
    units: int = 32,
    train_steps: int = 100,
    batch: int = 32,
) -> dict:
    """Trains each of (1, 2 layers) × (uni, bidirectional) on the same recall task and budget.

    Args:
        cell: a registry cell name.
        lags: distances to recall at the last step (sequences are max(lags) + 1 long).
        seed: seeds weights, data and training.
        units: state size per direction.
        train_steps: Adam updates per configuration.
        batch: sequences per update.

    Returns:
        {"configs": [{"layers", "bidirectional", "parameters", "lag", "accuracy", "train_seconds"}],
         "chance": 0.25, "settings": {...}}; train_seconds is wall time on this machine.

    Example:
    >>> result = depth_experiment(lags=(1, 2), units=4, train_steps=2)
    >>> [(c["layers"], c["bidirectional"]) for c in result["configs"]][:2]
    [(1, False), (2, False)]
    """
    lags = sorted({int(lag) for lag in lags})
    if not lags or lags[0] < 0:
        raise ValueError(f"lags must be non-negative integers, got {lags}")
    length = lags[-1] + 1
    configs = []
    for layers, bidirectional in CONFIGS:
        keras.utils.set_random_seed(seed)
        model = build_stack(cell, units, length, len(lags), layers, bidirectional)
        start = time.perf_counter()
        fit_recall(model, np.random.default_rng(seed), lags, train_steps, batch, SYMBOLS)
        seconds = time.perf_counter() - start
        configs.append(
            {
                "layers": layers,
                "bidirectional": bidirectional,
                "parameters": model.count_params(),
                "lag": lags,
                "accuracy": recall_accuracy(model, np.random.default_rng(seed + 1000), lags, symbols=SYMBOLS),
                "train_seconds": round(seconds, 2),
            }
        )
    settings = {"cell": cell, "units": units, "train_steps": train_steps, "batch": batch, "seed": seed}
    return {"configs": configs, "chance": 1 / SYMBOLS, "settings": settings}
