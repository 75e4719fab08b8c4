"""Factory for Keras recurrent layers with cuDNN-eligible defaults."""

from __future__ import annotations

import keras

CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}


def make_rnn(cell: str, units: int, name: str, **kwargs) -> keras.layers.RNN:
    """A sequence-returning, state-returning recurrent layer.

    The defaults (tanh/sigmoid, no recurrent dropout, not unrolled, GRU with `reset_after`) are
    the ones Keras runs with the fused cuDNN kernel on a GPU; on a CPU they run the generic loop.

    Args:
        cell: "lstm", "gru" or "simple_rnn".
        units: state size.
        name: layer name.
        **kwargs: forwarded to the Keras layer.

    Example:
    >>> make_rnn("gru", 8, name="rnn").return_state
    True
    """
    if cell not in CELLS:
        raise ValueError(f"Unknown cell {cell!r}; choose one of {sorted(CELLS)}.")
    return CELLS[cell](units, return_sequences=True, return_state=True, name=name, **kwargs)


def num_states(cell: str) -> int:
    """How many state tensors the cell carries (LSTM: h and c; GRU and SimpleRNN: h)."""
    return 2 if cell == "lstm" else 1
