"""The recurrent cells models can use, by name: the one registry CLIs, configs and the lab read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from seq2seq_app.core.layers.coupled_lstm_cell import CoupledLSTMCell
from seq2seq_app.core.layers.peephole_lstm_cell import PeepholeLSTMCell


@dataclass(frozen=True)
class CellType:
    """How to build one named cell's recurrent layer, and how many state tensors it carries."""

    layer: Callable[..., keras.layers.Layer]
    states: int
    cudnn: bool  # whether Keras can run it with the fused cuDNN kernel on a GPU


def _rnn_of(cell_class) -> Callable[..., keras.layers.Layer]:
    def layer(units: int, name: str, **kwargs) -> keras.layers.RNN:
        return keras.layers.RNN(cell_class(units, name=f"{name}_cell"), name=name, **kwargs)

    return layer


CELLS: dict[str, CellType] = {
    "gru": CellType(keras.layers.GRU, states=1, cudnn=True),
    "lstm": CellType(keras.layers.LSTM, states=2, cudnn=True),
    "simple_rnn": CellType(keras.layers.SimpleRNN, states=1, cudnn=False),
    "peephole_lstm": CellType(_rnn_of(PeepholeLSTMCell), states=2, cudnn=False),
    "coupled_lstm": CellType(_rnn_of(CoupledLSTMCell), states=2, cudnn=False),
}


def _check(cell: str) -> CellType:
    if cell not in CELLS:
        raise ValueError(f"Unknown cell {cell!r}; choose one of {sorted(CELLS)}.")
    return CELLS[cell]


def make_rnn(cell: str, units: int, name: str, **kwargs) -> keras.layers.Layer:
    """A sequence-returning, state-returning recurrent layer.

    For `lstm` and `gru` the defaults (tanh/sigmoid, no recurrent dropout, not unrolled, GRU with
    `reset_after`) are the ones Keras runs with the fused cuDNN kernel on a GPU; on a CPU, and
    for the other cells everywhere, the generic loop runs.

    Args:
        cell: a name in `CELLS`.
        units: state size.
        name: layer name.
        **kwargs: forwarded to the Keras layer.

    Example:
    >>> make_rnn("gru", 8, name="rnn").return_state
    True
    >>> make_rnn("peephole_lstm", 8, name="rnn").cell.units
    8
    """
    return _check(cell).layer(units, return_sequences=True, return_state=True, name=name, **kwargs)


def num_states(cell: str) -> int:
    """How many state tensors the cell carries (the LSTMs: h and c; GRU and SimpleRNN: h)."""
    return _check(cell).states
