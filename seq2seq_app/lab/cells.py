"""The cells the lab compares: every registry cell, plus a SimpleRNN with relu."""

from __future__ import annotations

import keras

from seq2seq_app.core.layers.rnn import CELLS, make_rnn

RELU = "simple_rnn_relu"
# A teaching specimen, not a registry cell: its state has no bound, so no model should train with it.
LAB_CELLS = ("simple_rnn", RELU, "lstm", "gru", "peephole_lstm", "coupled_lstm")
# Orthogonal × 1.5: the recurrent matrix stretches some directions by 1.5 per step, more than relu's
# half-rectification takes away, so the relu state and its gradients grow; tanh stays bounded.
RELU_GAIN = 1.5


def parse_cells(text: str | None, default: tuple[str, ...] = LAB_CELLS) -> tuple[str, ...]:
    """`"lstm,gru"` → ("lstm", "gru"); None or "" → `default`. Unknown names are a ValueError.

    Example:
    >>> parse_cells(" lstm, gru ")
    ('lstm', 'gru')
    """
    if not text or not text.strip():
        return default
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in LAB_CELLS]
    if unknown:
        raise ValueError(f"Unknown cell(s) {', '.join(unknown)}; choose from {', '.join(LAB_CELLS)}.")
    return names


def lab_rnn(cell: str, units: int, relu_gain: float = RELU_GAIN, name: str = "rnn") -> keras.layers.Layer:
    """A sequence- and state-returning recurrent layer for a name in `LAB_CELLS`.

    Example:
    >>> lab_rnn("simple_rnn_relu", 4).cell.activation.__name__
    'relu'
    """
    if cell == RELU:
        return keras.layers.SimpleRNN(
            units,
            activation="relu",
            recurrent_initializer=keras.initializers.Orthogonal(gain=relu_gain),
            return_sequences=True,
            return_state=True,
            name=name,
        )
    if cell not in CELLS:
        raise ValueError(f"Unknown cell {cell!r}; choose one of {', '.join(LAB_CELLS)}.")
    return make_rnn(cell, units, name=name)
