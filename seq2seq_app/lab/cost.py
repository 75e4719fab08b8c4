"""What a step of each registry cell costs on this machine, next to `lstm`, measured side by side."""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.core.layers.rnn import CELLS, make_rnn


def cost_experiment(
    cells: tuple[str, ...] = tuple(CELLS),
    length: int = 100,
    units: int = 256,
    batch: int = 64,
    repeats: int = 5,
) -> dict:
    """Milliseconds per time step, forward and forward+backward, of each cell's compiled layer.

    The cells take turns within each repeat (so a load spike hits them all alike) and each
    keeps its best repeat; `ratio_to_lstm` divides by `lstm`'s time from the same runs.

    Returns:
        {"cells": {name: {"forward_ms": f, "train_ms": f, "forward_ratio_to_lstm": f,
         "train_ratio_to_lstm": f}}, "settings": {...}}

    Example:
    >>> result = cost_experiment(("lstm", "coupled_lstm"), length=3, units=4, batch=2, repeats=1)
    >>> sorted(result["cells"]["coupled_lstm"])[:2]
    ['forward_ms', 'forward_ratio_to_lstm']
    """
    names = tuple(dict.fromkeys(("lstm", *cells)))
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, length, units)).astype("float32"))
    runs = {}
    for name in names:
        layer = make_rnn(name, units, name="rnn")

        @tf.function
        def forward(x, layer=layer):
            return layer(x)[0]

        @tf.function
        def train(x, layer=layer):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x)[0])
            return tape.gradient(loss, layer.trainable_variables)

        forward(x), train(x)  # trace and warm up before timing
        runs[name] = (forward, train)
    best = {name: [float("inf"), float("inf")] for name in names}
    for _ in range(repeats):
        for name, fns in runs.items():
            for k, fn in enumerate(fns):
                start = time.perf_counter()
                keras.tree.map_structure(np.asarray, fn(x))
                best[name][k] = min(best[name][k], (time.perf_counter() - start) * 1000 / length)
    lstm = best["lstm"]
    result = {
        name: {
            "forward_ms": round(f, 4),
            "train_ms": round(t, 4),
            "forward_ratio_to_lstm": round(f / lstm[0], 3),
            "train_ratio_to_lstm": round(t / lstm[1], 3),
        }
        for name, (f, t) in best.items()
        if name in cells
    }
    settings = {"length": length, "units": units, "batch": batch, "repeats": repeats, "inputs": units}
    return {"cells": result, "settings": settings}
