"""Inference-time GRU and LSTM recurrence, the same functions as Keras's cells in core TF ops.

On a CPU, Keras runs a GRU or LSTM layer through a generic time loop whose every step multiplies
that step's inputs by the input kernel (cuDNN, on a GPU, projects the whole sequence at once).
For inference (exports, validation, decoding steps) this module computes the same outputs from
the same weights with Keras's formulas, more cheaply:

- a sequence's input projection is one product before the loop;
- a recurrent product is split into blocks of 256 inner entries when it has a few rows: on the
  CPUs measured here, TensorFlow's oneDNN matmul took [1, 320] × [320, 960] (a GRU of 320 units)
  2.5x as long as the same product as [1, 256] × [256, 960] plus [1, 64] × [64, 960], while at
  64 rows and more the single product is the faster.

No maintained library offers this for Keras 3 layers, hence the hand-written loop. Training, and
every machine with a GPU, keep Keras's layers (cuDNN); tests compare every path here with Keras's.
"""

from __future__ import annotations

import keras
import tensorflow as tf

BLOCK = 256  # inner entries per product of a split recurrent product
FEW_ROWS = 8  # rows up to which the split product was the faster


def supports(layer_or_cell) -> bool:
    """Whether this module computes `layer_or_cell` (a built Keras GRU/LSTM cell, layer, or a
    `Bidirectional` of such layers) exactly as Keras does. An unbuilt layer goes through Keras,
    which builds it. With a GPU, Keras runs the layers with cuDNN (and XLA may compile them),
    which this module would only slow down."""
    if tf.config.list_logical_devices("GPU"):
        return False
    if isinstance(layer_or_cell, keras.layers.Bidirectional):
        return all(supports(d.cell) for d in (layer_or_cell.forward_layer, layer_or_cell.backward_layer))
    if getattr(layer_or_cell, "go_backwards", False):  # Keras returns its outputs reversed
        return False
    cell = getattr(layer_or_cell, "cell", layer_or_cell)
    standard = (
        cell.built
        and getattr(cell, "activation", None) is keras.activations.tanh
        and getattr(cell, "recurrent_activation", None) is keras.activations.sigmoid
        and getattr(cell, "use_bias", False)
    )
    if isinstance(cell, keras.layers.GRUCell):
        return standard and cell.reset_after
    return standard and isinstance(cell, keras.layers.LSTMCell)


def project(cell, x):
    """The input part of every gate, `x @ kernel` plus the input bias, for x [..., input_dim]."""
    kernel = tf.cast(cell.kernel, x.dtype)
    bias = tf.cast(cell.bias, x.dtype)
    # As one [rows, input_dim] product: a rank-3 operand would make it a batched product, which
    # took 4x as long for one sentence.
    product = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    product += bias[0] if isinstance(cell, keras.layers.GRUCell) else bias
    return tf.reshape(product, tf.concat([tf.shape(x)[:-1], [kernel.shape[1]]], 0))


def step(cell, projected, states: list) -> tuple[tf.Tensor, list]:
    """One step of `cell` from its projected input ([batch, gates], `project`) and its states."""
    h = states[0]
    recurrent = _recurrent_product(h, tf.cast(cell.recurrent_kernel, h.dtype))
    if isinstance(cell, keras.layers.GRUCell):
        x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
        r_z, r_r, r_h = tf.split(recurrent + tf.cast(cell.bias[1], h.dtype), 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        r = tf.sigmoid(x_r + r_r)
        candidate = tf.tanh(x_h + r * r_h)
        h = z * h + (1 - z) * candidate
        return h, [h]
    i, f, c, o = tf.split(projected + recurrent, 4, axis=-1)
    c = tf.sigmoid(f) * states[1] + tf.sigmoid(i) * tf.tanh(c)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, [h, c]


def _num_states(cell) -> int:
    return 1 if isinstance(cell, keras.layers.GRUCell) else 2


def _recurrent_product(h, kernel):
    inner = kernel.shape[0]
    if inner <= BLOCK:
        return tf.matmul(h, kernel)

    def split():
        blocks = [tf.matmul(h[:, i : i + BLOCK], kernel[i : i + BLOCK]) for i in range(0, inner, BLOCK)]
        return tf.add_n(blocks)

    return tf.cond(tf.shape(h)[0] <= FEW_ROWS, split, lambda: tf.matmul(h, kernel))


def run(layer, x, mask) -> tuple[tf.Tensor, list]:
    """A Keras GRU/LSTM layer (or a `Bidirectional` of them) over x [batch, length, dim].

    Args:
        layer: a layer `supports` accepts, built, returning sequences and states.
        x: its inputs.
        mask: bool [batch, length], True on each sequence's tokens, which come first.

    Returns:
        As the layer: outputs [batch, length, units · directions], zero at padding, then the
        final states (each direction's, the forward one's first), each [batch, units]. As in
        Keras, the backward direction starts at each sequence's own last token.
    """
    directions = (
        [(layer.forward_layer, False), (layer.backward_layer, True)]
        if isinstance(layer, keras.layers.Bidirectional)
        else [(layer, False)]
    )
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    width = tf.shape(x)[1]
    steps = tf.reduce_max(tf.concat([lengths, [0]], 0))
    time_mask = tf.transpose(mask)[:, :, None]  # [length, batch, 1]

    def reverse(sequence):  # each row's own tokens, padding left in place
        return tf.reverse_sequence(sequence, lengths, seq_axis=1, batch_axis=0)

    outputs, final = [], []
    for direction, backwards in directions:
        inputs = reverse(x) if backwards else x
        projected = tf.transpose(project(direction.cell, inputs), [1, 0, 2])  # time-major
        sequence, states = _loop(direction.cell, projected, time_mask, steps)
        sequence = tf.pad(sequence, [[0, 0], [0, width - steps], [0, 0]])
        outputs.append(reverse(sequence) if backwards else sequence)
        final += states
    return tf.concat(outputs, axis=-1), final


def _loop(cell, projected, time_mask, steps):
    """One direction's loop over time-major projected inputs. Each direction has a loop of its
    own, so TensorFlow can run the two of a bidirectional layer side by side."""

    def body(t, states, written):
        out, state = step(cell, projected[t], states)
        keep = time_mask[t]
        states = [tf.where(keep, s, o) for s, o in zip(state, states)]
        return t + 1, states, written.write(t, tf.where(keep, out, tf.zeros_like(out)))

    batch = tf.shape(projected)[1]
    states = [tf.zeros([batch, cell.units], projected.dtype)] * _num_states(cell)
    written = tf.TensorArray(projected.dtype, size=steps, element_shape=[None, cell.units])
    _, states, written = tf.while_loop(lambda t, *_: t < steps, body, (0, states, written))
    sequence = tf.cond(  # an empty list of unknown batch size cannot be stacked
        steps > 0,
        lambda: tf.transpose(written.stack(), [1, 0, 2]),
        lambda: tf.zeros([batch, 0, cell.units], projected.dtype),
    )
    return sequence, states
