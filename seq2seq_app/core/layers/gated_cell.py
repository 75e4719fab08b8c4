"""Shared weights and bookkeeping of the hand-written LSTM variants (peephole, coupled gates)."""

from __future__ import annotations

import keras
from keras import ops


class GatedCell(keras.layers.Layer):
    """Base of an LSTM-like cell with state (h, c) and `gates` stacked input/recurrent projections.

    Subclasses set `gates` (how many pre-activations each step computes, `gates × units`
    columns) and implement `call`. The last gate block is the forget gate's, so its bias
    starts at 1, as Keras' `LSTM(unit_forget_bias=True)` does (Jozefowicz et al., 2015):
    the cell remembers by default until training teaches it to forget.

    Args:
        units: state size.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
    >>> from seq2seq_app.core.layers.coupled_lstm_cell import CoupledLSTMCell
    >>> CoupledLSTMCell(4).state_size
    [4, 4]
    """

    gates = 4

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width), initializer="glorot_uniform", name="kernel"
        )
        # Orthogonal per gate block, like Keras' LSTM: products of the recurrent matrix over many
        # steps neither shrink nor grow at initialisation.
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width), initializer="orthogonal", name="recurrent_kernel"
        )
        units = self.units

        def bias_init(shape, dtype=None):
            return ops.concatenate([ops.zeros(shape[0] - units, dtype), ops.ones(units, dtype)])

        self.bias = self.add_weight(shape=(width,), initializer=bias_init, name="bias")

    def pre_activations(self, inputs, h):
        """The `gates` pre-activation blocks [batch, units] for input x_t and previous output h."""
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        return ops.split(z, self.gates, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config
