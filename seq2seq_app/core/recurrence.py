"""GRU and LSTM recurrence, the same functions as Keras's cells in core TF ops.

On a CPU, Keras runs a GRU or LSTM layer through a generic time loop whose every step multiplies
that step's inputs by the input kernel (cuDNN, on a GPU, projects the whole sequence at once).
This module computes the same outputs, and through TensorFlow's loop gradients the same
gradients, from the same weights with Keras's formulas, more cheaply:

- a sequence's input projection is one product before the loop (and one in the backward pass);
- a recurrent product may be split into blocks of 256 inner entries when it has a few rows: on
  an AVX-512 CPU TensorFlow's oneDNN matmul took [1, 320] × [320, 960] (a GRU of 320 units) 2.5x
  as long as the same product as [1, 256] × [256, 960] plus [1, 64] × [64, 960], while on an
  AVX2-only CPU the split product was the slower, and at 16 rows and more the single product was
  the faster on both. Which is faster is the machine's: by default few rows take the split
  product; inside `few_row_split` the caller's per-shape choice decides (an export measures both
  when it loads, `ProductChoice`);
- outside training, a batch of texts of mixed lengths is packed, as cuDNN packs sequences: rows
  sorted longest first, each step computes only the rows still reading and only read positions
  are projected, where Keras steps every row through the longest text's length
  (docs/benchmarks.md, "Packed rows", has the measurements).

No maintained library offers this for Keras 3 layers, hence the hand-written loop. Every machine
with a GPU keeps Keras's layers (cuDNN); tests compare this module with Keras's layers (values in
float32 and bfloat16, gradients in float32, eagerly and traced, split and whole products, packed
rows and not). A SavedModel carries the path (this loop or Keras's layers) of the machine that
exported it; which form its few-row products take is chosen where it loads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence

import keras
import tensorflow as tf

BLOCK = 256  # inner entries per product of a split recurrent product
FEW_ROWS = 8  # rows up to which the split product can be the faster


class _SplitChoice(threading.local):
    """Per (inner, columns) shape, a bool tensor: whether few rows take the split product
    (`few_row_split`); a shape not in it always does. Per thread, as Keras's scopes are: two
    threads tracing at once must not see each other's choice."""

    choice: Mapping[tuple[int, int], tf.Tensor] = {}


_split_choice = _SplitChoice()


def supports(layer_or_cell) -> bool:
    """Whether this module computes `layer_or_cell` as Keras does: a built GRU (`reset_after`) or
    LSTM cell with tanh/sigmoid activations and biases and no dropout, a layer of one (returning
    sequences and states, not stateful) or a concatenating `Bidirectional` of two. The outputs of
    `run` at masked positions are zero, where a one-direction Keras layer repeats its last output.
    An unbuilt layer goes through Keras, which builds it. With a GPU, Keras runs the layers with
    cuDNN (and XLA may compile them), which this module would only slow down."""
    if tf.config.list_logical_devices("GPU"):
        return False
    if isinstance(layer_or_cell, keras.layers.Bidirectional):
        directions = (layer_or_cell.forward_layer, layer_or_cell.backward_layer)
        return layer_or_cell.merge_mode == "concat" and all(_plain_layer(d) for d in directions)
    if isinstance(layer_or_cell, keras.layers.RNN):
        return not layer_or_cell.go_backwards and _plain_layer(layer_or_cell)  # reversed outputs
    cell = layer_or_cell
    # Exact types: a subclass may compute something else.
    if type(cell) not in (keras.layers.GRUCell, keras.layers.LSTMCell):
        return False
    standard = (
        cell.built
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
        and cell.use_bias
        # Keras drops inputs and states inside the cell in training; this module does not.
        and not cell.dropout
        and not cell.recurrent_dropout
    )
    return standard and (type(cell) is keras.layers.LSTMCell or cell.reset_after)


def _plain_layer(layer) -> bool:
    return layer.return_sequences and layer.return_state and not layer.stateful and supports(layer.cell)


def project(cell, x):
    """The input part of every gate, `x @ kernel` plus the input bias, for x [..., input_dim]."""
    kernel = tf.cast(cell.kernel, x.dtype)
    bias = tf.cast(cell.bias, x.dtype)
    # As one [rows, input_dim] product: a rank-3 operand would make it a batched product, which
    # took 4x as long for one sentence.
    product = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    # Added as a sum: fused into the product with `bias_add` (about 2 % of the NSMC model's traced
    # op time) it also moved the LSTM models' training floats, which the GRU-only recurrent bias
    # in `_recurrent_product` leaves as they were.
    product += bias[0] if isinstance(cell, keras.layers.GRUCell) else bias
    return tf.reshape(product, tf.concat([tf.shape(x)[:-1], [kernel.shape[1]]], 0))


def step(cell, projected, states: list) -> tuple[tf.Tensor, list]:
    """One step of `cell` from its projected input ([batch, gates], `project`; for a GRU, or
    its three gates' parts as a tuple, `_gate_parts`) and its states."""
    h = states[0]
    kernel = tf.cast(cell.recurrent_kernel, h.dtype)
    if isinstance(cell, keras.layers.GRUCell):
        x_z, x_r, x_h = projected if isinstance(projected, tuple) else tf.split(projected, 3, axis=-1)
        recurrent = _recurrent_product(h, kernel, tf.cast(cell.bias[1], h.dtype))
        r_z, r_r, r_h = tf.split(recurrent, 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        r = tf.sigmoid(x_r + r_r)
        candidate = tf.tanh(x_h + r * r_h)
        h = z * h + (1 - z) * candidate
        return h, [h]
    i, f, c, o = tf.split(projected + _recurrent_product(h, kernel), 4, axis=-1)
    c = tf.sigmoid(f) * states[1] + tf.sigmoid(i) * tf.tanh(c)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, [h, c]


def _num_states(cell) -> int:
    return 1 if isinstance(cell, keras.layers.GRUCell) else 2


def splits(shape: Sequence[int]) -> bool:
    """Whether a recurrent kernel of this [inner, columns] shape has a split product at few rows.

    Example:
    >>> splits((320, 960)), splits((256, 768))
    (True, False)
    """
    return shape[0] > BLOCK


def split_product(h: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """`h @ kernel` as a sum of products over blocks of `BLOCK` inner entries (equal up to float
    rounding).

    Example:
    >>> split_product(tf.ones([1, 300]), tf.ones([300, 2])).numpy().tolist()
    [[300.0, 300.0]]
    """
    blocks = [tf.matmul(h[:, i : i + BLOCK], kernel[i : i + BLOCK]) for i in range(0, kernel.shape[0], BLOCK)]
    return tf.add_n(blocks)


@contextlib.contextmanager
def few_row_split(choice: Mapping[tuple[int, int], tf.Tensor]) -> Iterator[None]:
    """Within this block (in this thread), the recurrent products this module builds decide their
    form for few rows by `choice`.

    Args:
        choice: per kernel shape (inner, columns), a bool scalar tensor: whether few rows take the
            split product. Shapes not in it keep the default, split. The tensors are used where the
            products are built: make them outside a loop, so its steps reuse them.

    Example:
    >>> with few_row_split({(320, 960): tf.constant(False)}):  # doctest: +SKIP
    ...     outputs, *states = run(layer, x)
    """
    outer = _split_choice.choice
    _split_choice.choice = choice
    try:
        yield
    finally:
        _split_choice.choice = outer


def _recurrent_product(h, kernel, bias=None):
    """`h @ kernel` (plus `bias`), whole or split (`few_row_split`). The bias is added with
    `bias_add` right after the whole product, which TensorFlow's graph optimiser fuses into it."""

    def whole():
        product = tf.matmul(h, kernel)
        return product if bias is None else tf.nn.bias_add(product, bias)

    if not splits(kernel.shape):
        return whole()
    few = tf.shape(h)[0] <= FEW_ROWS
    chosen = _split_choice.choice.get(tuple(kernel.shape))
    if chosen is not None:
        few &= chosen

    def split():
        product = split_product(h, kernel)
        return product if bias is None else product + bias

    return tf.cond(few, split, whole)


def run(layer, x, mask=None, initial_states=None, training=None) -> tuple[tf.Tensor, list]:
    """A Keras GRU/LSTM layer (or a `Bidirectional` of them) over x [batch, length, dim].

    Args:
        layer: a layer `supports` accepts.
        x: its inputs.
        mask: bool [batch, length], False at the positions to skip; None reads every position.
        initial_states: the states to start from, as Keras's `initial_state` (each direction's,
            the forward one's first); None starts from zeros.
        training: Keras's flag. In training each step's inputs are read from a `TensorArray`
            (the gradient of slicing the sequence would be a tensor of its full size on every
            step); otherwise they are sliced from the sequence, which skips copying it into the
            array, and a batch with a mask, lengths that differ and padding only at the end is
            packed (see the module's docstring). Gradients are right on every path.

    Returns:
        As the layer: outputs [batch, length, units · directions], zero at masked positions, then
        the final states (each direction's, the forward one's first), each [batch, units]. As in
        Keras, a masked step leaves the state as it was, and the backward direction starts at
        each sequence's own last unmasked token.
    """
    directions = (
        [(layer.forward_layer, False), (layer.backward_layer, True)]
        if isinstance(layer, keras.layers.Bidirectional)
        else [(layer, False)]
    )
    packable = not training and mask is not None
    batch, width = tf.shape(x)[0], tf.shape(x)[1]
    if mask is None:
        mask = tf.ones([batch, width], tf.bool)
    # Up to each row's last unmasked position: the loop stops after the longest.
    ends = tf.maximum(tf.reduce_max(tf.where(mask, tf.range(width)[None, :] + 1, 0), axis=1), 0)
    steps = tf.reduce_max(tf.concat([ends, [0]], 0))

    def start(index, direction):
        dtype, n = direction.compute_dtype, _num_states(direction.cell)
        if initial_states is None:
            return [tf.zeros([batch, direction.cell.units], dtype)] * n
        return [tf.cast(s, dtype) for s in initial_states[index * n : (index + 1) * n]]

    def plain():
        # Time-major before the projection, where the features are fewer than the gates'.
        inputs = tf.transpose(x, [1, 0, 2])
        time_mask = tf.transpose(mask)[:, :, None]
        outputs, final = [], []
        for index, (direction, backwards) in enumerate(directions):
            cell = direction.cell
            projected = project(cell, tf.cast(inputs, direction.compute_dtype))
            read = _reader(projected, bool(training))
            written, states = _loop(
                cell, read, time_mask.__getitem__, steps, start(index, direction), backwards
            )
            sequence = tf.cond(  # an empty list of unknown batch size cannot be stacked
                steps > 0,
                lambda written=written: tf.transpose(written.stack(), [1, 0, 2]),
                lambda cell=cell, dtype=projected.dtype: tf.zeros([batch, 0, cell.units], dtype),
            )
            outputs.append(tf.pad(sequence, [[0, 0], [0, width - steps], [0, 0]]))
            final += states
        return (tf.concat(outputs, axis=-1), *final)

    def packed():
        # Longest rows first, as cuDNN's packed sequences: the rows still reading at step t are
        # then the first `active[t]`, and only their positions are projected and stepped
        # through. A batch of texts of mixed lengths does none of its padding's work.
        order = tf.argsort(ends, direction="DESCENDING", stable=True)
        reading = tf.gather(ends, order)[None, :] > tf.range(steps)[:, None]  # [steps, batch]
        active = tf.reduce_sum(tf.cast(reading, tf.int32), 1)
        offsets = tf.cumsum(active, exclusive=True)
        rank = tf.math.invert_permutation(order)  # each row's place in the order
        # (position, sorted row) of each position read, in the order the loop writes its outputs.
        positions = tf.where(reading)
        taken = tf.gather_nd(
            x, tf.stack([tf.gather(tf.cast(order, tf.int64), positions[:, 1]), positions[:, 0]], 1)
        )
        outputs, final = [], []
        for index, (direction, backwards) in enumerate(directions):
            projected = project(direction.cell, tf.cast(taken, direction.compute_dtype))
            written, states = _packed_loop(
                direction.cell,
                _packed_reader(direction.cell, projected, offsets, active),
                active,
                [tf.gather(s, order) for s in start(index, direction)],
                backwards,
            )
            outputs.append(written.concat())
            final += [tf.gather(s, rank) for s in states]
        # Back to each row's place, gathered (a CPU's ScatterNd writes entry by entry): position w
        # of a row is entry offsets[w] + its rank in the order, or a row of zeros past its end.
        outputs = tf.concat(outputs, axis=-1)
        outputs = tf.concat([outputs, tf.zeros_like(outputs[:1])], 0)
        columns = tf.pad(offsets, [[0, width - steps]])[None, :] + rank[:, None]
        entry = tf.where(tf.range(width)[None, :] < ends[:, None], columns, tf.shape(positions)[0])
        return (tf.gather(outputs, entry), *final)

    if not packable:  # training (bucketed batches, the simpler gradient), or no mask
        outputs, *final = plain()
    else:
        # Packing pays for its sorting when lengths differ, and needs each row's positions up to
        # its last unmasked one all unmasked (padding only at the end).
        gaps = tf.reduce_any(mask != (tf.range(width)[None, :] < ends[:, None]))
        uneven = tf.reduce_min(ends) < tf.reduce_max(ends)
        outputs, *final = tf.cond(uneven & ~gaps, packed, plain)
    return outputs, final


def _reader(projected, through_array):
    """Step t's inputs, read from a `TensorArray` in training (the gradient of slicing the
    sequence would be a tensor of its full size on every step), else sliced from the sequence,
    which skips copying it into the array."""
    if not through_array:
        return projected.__getitem__
    size, shape = tf.shape(projected)[0], projected.shape[1:]
    return tf.TensorArray(projected.dtype, size=size, element_shape=shape).unstack(projected).read


def _packed_reader(cell, projected, offsets, active):
    """Step t's inputs in a packed sequence: rows offsets[t] to offsets[t] + active[t], a GRU's as
    its gates' parts (`_gate_parts`). (Unpacked, a step's inputs are one slice, and splitting it
    costs fewer ops than slicing three parts: at one sentence, the ops are what costs.)"""
    parts = _gate_parts(cell, projected)

    def read(t):
        begin, size = tf.stack([offsets[t], 0]), tf.stack([active[t], -1])
        sliced = tuple(tf.slice(part, begin, size) for part in parts)
        for part, piece in zip(parts, sliced):
            piece.set_shape([None, part.shape[-1]])  # a computed size leaves the width unknown
        return sliced if len(sliced) > 1 else sliced[0]

    return read


def _gate_parts(cell, projected) -> tuple:
    """A GRU's projected inputs as its three gates' parts, split once for the whole sequence: a
    step then slices each part on its first axis, which TensorFlow does without a copy when a
    row's bytes are a multiple of its alignment (256 or 320 float32 units are), where splitting
    each step's inputs copies them (in a per-op trace of the NSMC model, about a tenth
    of a step's time besides its product). Other cells' inputs stay whole."""
    if isinstance(cell, keras.layers.GRUCell):
        return tuple(tf.split(projected, 3, axis=-1))
    return (projected,)


def _loop(cell, read, keep, steps, states, backwards):
    """One direction's loop over the first `steps` positions: `read(t)` gives step t's projected
    inputs, `keep(t)` whether each row reads position t. Each direction has a loop of its own, so
    TensorFlow can run the two of a bidirectional layer side by side. Backwards, the loop runs
    from the last position down: a row's positions after its last unmasked one leave its state
    as it was, so each row starts from its own end, as Keras's backward layer does, and its
    outputs land in place (no reversed copies of the sequence). Returns the outputs, a
    `TensorArray` of one [batch, units] entry a step, and the final states."""

    def body(i, states, written):
        t = steps - 1 - i if backwards else i
        out, state = step(cell, read(t), states)
        keep_t = keep(t)
        states = [tf.where(keep_t, s, o) for s, o in zip(state, states)]
        return i + 1, states, written.write(t, tf.where(keep_t, out, tf.zeros_like(out)))

    written = tf.TensorArray(states[0].dtype, size=steps, element_shape=[None, cell.units])
    _, states, written = tf.while_loop(lambda i, *_: i < steps, body, (0, states, written))
    return written, states


def _packed_loop(cell, read, active, states, backwards):
    """`_loop` over rows sorted longest first, each reading every position up to its end:
    `active[t]` rows read position t, and `read(t)` gives their projected inputs. The state holds
    only the rows reading: forwards, rows leave it when they end (their final states kept
    aside); backwards, rows join it at their last position. (`read(t)` may give a GRU's gates'
    parts as a tuple, `_packed_reader`.) Returns the outputs, a `TensorArray`
    of one [active[t], units] entry a step, and the final states of all rows."""
    steps = tf.shape(active)[0]
    written = tf.TensorArray(states[0].dtype, size=steps, element_shape=[None, cell.units], infer_shape=False)
    invariants = (
        tf.TensorShape([]),
        [tf.TensorShape([None, cell.units])] * len(states),
        tf.TensorShape(None),
    )

    if backwards:
        after = tf.concat([active[1:], [0]], 0)  # rows that read step t + 1

        def body(i, now, written):
            t = steps - 1 - i
            # Rows whose last position is t join with their initial states.
            now = [tf.concat([c, s[after[t] : active[t]]], 0) for c, s in zip(now, states)]
            out, now = step(cell, read(t), now)
            return i + 1, now, written.write(t, out)

        empty = [s[:0] for s in states]
        _, now, written = tf.while_loop(
            lambda i, *_: i < steps, body, (0, empty, written), shape_invariants=invariants
        )
        # Rows that read nothing keep their initial states.
        return written, [tf.concat([c, s[active[0] :]], 0) for c, s in zip(now, states)]

    ended = [
        tf.TensorArray(s.dtype, size=steps, element_shape=[None, cell.units], infer_shape=False)
        for s in states
    ]

    def body(i, now, written, ended):
        # Rows that read t - 1 but not t are done: their states are final.
        ended = [e.write(steps - 1 - i, c[active[i] :]) for e, c in zip(ended, now)]
        out, now = step(cell, read(i), [c[: active[i]] for c in now])
        return i + 1, now, written.write(i, out), ended

    _, now, written, ended = tf.while_loop(
        lambda i, *_: i < steps,
        body,
        (0, states, written, ended),
        shape_invariants=(*invariants, [tf.TensorShape(None)] * len(states)),
    )
    return written, [tf.concat([c, e.concat()], 0) for c, e in zip(now, ended)]
