"""LSTM cell with peephole connections (Gers & Schmidhuber, 2000)."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core.layers.gated_cell import GatedCell


@keras.saving.register_keras_serializable(package="seq2seq_app")
class PeepholeLSTMCell(GatedCell):
    """LSTM whose gates also read the cell state ("peepholes"), for `keras.layers.RNN`.

    With x the input, h and c the previous output and cell state, ⊙ the elementwise product:

        i  = σ(W_i x + U_i h + p_i ⊙ c + b_i)
        f  = σ(W_f x + U_f h + p_f ⊙ c + b_f)
        c' = f ⊙ c + i ⊙ tanh(W_g x + U_g h + b_g)
        o  = σ(W_o x + U_o h + p_o ⊙ c' + b_o)
        h' = o ⊙ tanh(c')

    The peepholes p are diagonal (one weight per unit), so they add 3 × units parameters to an
    LSTM's. The output gate looks at the new cell state, as in the paper. Gers & Schmidhuber
    added them so that gates can time events from the cell's contents, which h (squashed and
    gated) may hide.

    Args:
        units: state size.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
    >>> layer = keras.layers.RNN(PeepholeLSTMCell(6), return_sequences=True)
    >>> tuple(layer(ops.ones((2, 5, 3))).shape)
    (2, 5, 6)
    """

    gates = 4  # blocks: input, candidate, output, forget (last: see GatedCell)

    def build(self, input_shape):
        super().build(input_shape)
        self.peepholes = self.add_weight(shape=(3, self.units), initializer="zeros", name="peepholes")

    def call(self, inputs, states, training=None):
        h, c = states
        zi, zg, zo, zf = self.pre_activations(inputs, h)
        i = ops.sigmoid(zi + self.peepholes[0] * c)
        f = ops.sigmoid(zf + self.peepholes[1] * c)
        c = f * c + i * ops.tanh(zg)
        o = ops.sigmoid(zo + self.peepholes[2] * c)
        h = o * ops.tanh(c)
        return h, [h, c]
