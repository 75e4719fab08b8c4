"""LSTM cell with coupled input and forget gates ("CIFG"; Greff et al., 2017)."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core.layers.gated_cell import GatedCell


@keras.saving.register_keras_serializable(package="seq2seq_app")
class CoupledLSTMCell(GatedCell):
    """LSTM whose input gate is one minus its forget gate, for `keras.layers.RNN`.

        f  = σ(W_f x + U_f h + b_f)
        c' = f ⊙ c + (1 − f) ⊙ tanh(W_g x + U_g h + b_g)
        o  = σ(W_o x + U_o h + b_o)
        h' = o ⊙ tanh(c')

    The cell writes exactly as much as it forgets, so c' is a convex mix of the old state and
    the candidate and stays in [−1, 1]. Three gate blocks instead of four: a quarter fewer
    recurrent parameters and matrix columns per step than `lstm`. Greff et al. (2017) found it
    about as accurate as the full LSTM on their tasks. No peepholes here, unlike their variant,
    so it differs from `lstm` in the coupling alone.

    Args:
        units: state size.
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
    >>> layer = keras.layers.RNN(CoupledLSTMCell(6), return_sequences=True)
    >>> tuple(layer(ops.ones((2, 5, 3))).shape)
    (2, 5, 6)
    """

    gates = 3  # blocks: candidate, output, forget (last: see GatedCell)

    def call(self, inputs, states, training=None):
        h, c = states
        zg, zo, zf = self.pre_activations(inputs, h)
        f = ops.sigmoid(zf)
        c = f * c + (1.0 - f) * ops.tanh(zg)
        h = ops.sigmoid(zo) * ops.tanh(c)
        return h, [h, c]
