"""How far back each cell can recall: accuracy against the distance L on delayed recall."""

from __future__ import annotations

import keras
import numpy as np

from seq2seq_app.lab.cells import LAB_CELLS, RELU_GAIN
from seq2seq_app.lab.recall_model import build_recall_model, fit_recall, recall_accuracy

LAGS = (1, 5, 10, 20, 40)
SYMBOLS = 4


def memory_experiment(
    cells: tuple[str, ...] = LAB_CELLS,
    lags: tuple[int, ...] = LAGS,
    seed: int = 0,
    units: int = 32,
    train_steps: int = 150,
    batch: int = 32,
    relu_gain: float = RELU_GAIN,
) -> dict:
    """Trains one model per cell to recall, at the last step, the symbols seen L steps earlier.

    One model answers every lag at once (one head per lag) on sequences of max(lags) + 1 steps,
    so the cells get the same budget and each sees every distance; chance is 1 / 4.

    Args:
        cells: names from `LAB_CELLS`.
        lags: distances L (0 = the last step's own symbol).
        seed: seeds weights, data and training.
        units: state size.
        train_steps: Adam updates per cell.
        batch: sequences per update.
        relu_gain: gain of the relu cell's orthogonal recurrent matrix.

    Returns:
        {"cells": {name: {"lag": [...], "accuracy": [...]}}, "chance": 0.25, "settings": {...}};
        accuracies are on 512 fresh sequences.

    Example:
    >>> result = memory_experiment(("gru",), lags=(1, 3), units=4, train_steps=2)
    >>> result["cells"]["gru"]["lag"], len(result["cells"]["gru"]["accuracy"])
    ([1, 3], 2)
    """
    lags = sorted({int(lag) for lag in lags})
    if not lags or lags[0] < 0:
        raise ValueError(f"lags must be non-negative integers, got {lags}")
    length = lags[-1] + 1
    result = {"cells": {}}
    for i, cell in enumerate(cells):
        keras.utils.set_random_seed(seed + i)
        model = build_recall_model(
            cell, units, length, outputs=len(lags), symbols=SYMBOLS, relu_gain=relu_gain
        )
        fit_recall(model, np.random.default_rng(seed), lags, train_steps, batch, SYMBOLS)
        accuracy = recall_accuracy(model, np.random.default_rng(seed + 1000), lags, symbols=SYMBOLS)
        result["cells"][cell] = {"lag": lags, "accuracy": accuracy}
    result["chance"] = 1 / SYMBOLS
    result["settings"] = {
        "task": f"{length} random symbols ({SYMBOLS} kinds); at the last step name the one L steps back",
        "units": units,
        "train_steps": train_steps,
        "batch": batch,
        "seed": seed,
    }
    return result
