"""Weights stored in float16 in a SavedModel and used in float32, at no cost per call."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

ROW = 16  # float32s per row of the copy: 64 bytes, so a weight's rows are sliced without a copy
_NUMBERS = itertools.count()
FLOAT16_ERROR = 2.0**-10  # the largest rounding allowed, relative to the weight's largest value


def stored_variable(value: tf.Variable, float16: bool = True) -> tf.Variable:
    """The variable a SavedModel stores for a float32 weight, under the weight's own name.

    Float16 for a tensor of rank 2 or more (matrices, kernels, embeddings, a GRU's stacked biases:
    half the bytes) whose float16 rounding stays within 2⁻¹⁰ of its largest value: rounding moves
    each value by at most 2⁻¹¹ of itself, and values too small for float16 by less than 6·10⁻⁸,
    which the models do not notice. Float32 for vectors (biases, normalisation statistics: few
    bytes), for weights float16 cannot hold, and for every weight with `float16=False`."""
    name = value.name.split(":")[0]
    array = value.numpy()
    if float16 and value.dtype == tf.float32 and value.shape.rank >= 2 and array.size:
        with np.errstate(over="ignore"):  # an overflow is found below
            half = array.astype(np.float16)
        largest = float(np.abs(array).max())
        error = np.abs(half.astype(np.float32) - array)  # inf where float16 overflows
        if np.all(np.isfinite(half)) and float(error.max()) <= FLOAT16_ERROR * largest:
            return tf.Variable(half, trainable=False, name=name)
    return tf.Variable(array, trainable=False, name=name)


class Float32Copy(tf.saved_model.experimental.TrackableResource):
    """A float32 copy of float16-stored weights, made once when the SavedModel loads.

    The SavedModel's checkpoint holds only the float16 variables (half the bytes of float32); the
    copy is a resource whose initializer casts them. Loaders run resource initializers after
    restoring the variables: `tf.saved_model.load`, and the TF1 loader whose steps (restore, then
    the init op) the C++ loader of TF Serving takes as well. Casting in every call instead costs
    about 2.8 ms for a translator's 8.5 M weights, a third of a sentence's translation. TensorFlow
    offers no such resource, so it is written here with core ops (`VarHandleOp`,
    `AssignVariableOp`, `ReadVariableOp`).

    The copy is one [rows, 16] buffer, each weight starting on a row, so `values` slices a weight
    out of it without copying (when its size is a multiple of 16, as for every shipped weight).

    The graphs read the copy, not the variables, with one exception: a decoding step gathers its
    input embeddings from the stored rows of the tied embeddings (`ExportBase.decoder_tables`).
    So assign through `ExportBase.refresh_weights`, which refills the copy; assigning to a loaded
    SavedModel's `model_variables` changes at most those rows, and leaves the model inconsistent.

    A decoder's output layer, `output_table=(embeddings, bias, offsets)`, is held as the one
    right operand of `[x, 1] @ table` (`output_table()`): the [vocab, dim] tied embeddings
    transposed, over the [vocab] bias as a last row, both padded with zeros to `len(offsets)`
    columns, and `offsets` added to the bias row (NEG_INF for columns never to be chosen). So a
    decoding step's logits are one product: TensorFlow's CPU matmul repacks a transposed right
    operand on every call (transposing in every call would cost as much), and a bias added after
    the product, or a ban after that, is one more pass over [rows, vocab] on every step.

    Args:
        stored: the SavedModel's variables (see `stored_variable`), tracked by their owner.
        output_table: indices into `stored` of the tied embeddings and the output bias, and the
            float32 offsets of the bias row, one per column of the table.

    Example:
    >>> kernel = stored_variable(tf.Variable(tf.ones([3, 2])))
    >>> Float32Copy([kernel]).values()[0].dtype
    tf.float32
    """

    def __init__(
        self, stored: Sequence[tf.Variable], output_table: tuple[int, int, np.ndarray] | None = None
    ):
        # A plain list: a resource does not track attributes, and the variables belong to the
        # SavedModel under their owner's names.
        self._stored = list(stored)
        self._table = None
        if output_table is not None:
            embeddings, bias, offsets = output_table
            offsets = np.asarray(offsets, np.float32)
            self._table = (embeddings, bias, offsets)
            matrix, vector = self._stored[embeddings].shape, self._stored[bias].shape
            if matrix.rank != 2 or vector != (matrix[0],) or offsets.shape != (max(matrix[0], offsets.size),):
                raise ValueError(
                    "an output table needs [vocab, dim] embeddings, a [vocab] bias and vocab or more offsets"
                )
            self._table_shape = [matrix[1] + 1, offsets.size]
        # The output table's embeddings are copied only into the table.
        table_part = self._table[0] if self._table is not None else None
        self._copied = [i for i, v in enumerate(self._stored) if v.dtype == tf.float16 and i != table_part]
        self._first_row = {}
        rows = 0
        for i in self._copied:
            self._first_row[i] = rows
            rows += -(-self._stored[i].shape.num_elements() // ROW)
        self._table_row = rows
        if self._table is not None:
            rows += -(-int(np.prod(self._table_shape)) // ROW)
        self._rows = rows
        # Named after the stored weights and numbered per process, so two exports in one process
        # never share a copy (refreshing one would change the other) and a fresh process
        # saving the same weights writes the same graph; loaders rename it once more per load.
        digest = hashlib.sha256()
        for variable in self._stored:
            digest.update(str(variable.shape).encode() + variable.dtype.name.encode())
            digest.update(variable.numpy().tobytes())
        if self._table is not None:
            digest.update(str(self._table[:2]).encode() + self._table[2].tobytes())
        self._shared_name = f"float32_copy_{digest.hexdigest()[:32]}_{next(_NUMBERS)}"
        super().__init__()
        self._initialize()

    def _create_resource(self):
        shape = [self._rows, ROW]
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=shape, shared_name=self._shared_name)

    # No `_destroy_resource`: a loaded model's signatures outlive the loaded object
    # (`tf.saved_model.load(path).signatures["translate"]`) and would lose the copy they read. So
    # each load keeps its copy until the process ends: load a model once and keep it.
    def _initialize(self):
        values = [self._stored[i] for i in self._copied]
        if self._table is not None:
            embeddings, bias, offsets = self._table
            vocab, columns = self._stored[bias].shape[0], offsets.size
            # Transposed in its stored dtype: half the bytes of a float32 transpose.
            table = tf.pad(tf.transpose(self._stored[embeddings]), [[0, 0], [0, columns - vocab]])
            bias_row = tf.pad(self._stored[bias], [[0, columns - vocab]]) + offsets
            values.append(tf.concat([tf.cast(table, tf.float32), bias_row[None]], 0))
        rows = [tf.zeros([0, ROW])]
        for value in values:
            flat = tf.reshape(tf.cast(value, tf.float32), [-1])
            padding = -flat.shape[0] % ROW
            rows.append(tf.reshape(tf.pad(flat, [[0, padding]]), [-1, ROW]))
        return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=tf.concat(rows, 0))

    def refill(self) -> None:
        """Copies the stored variables into the copy again, after they were assigned to."""
        self._initialize()

    def _read(self) -> tf.Tensor:
        copy = tf.raw_ops.ReadVariableOp(resource=self.resource_handle, dtype=tf.float32)
        return tf.ensure_shape(copy, [self._rows, ROW])

    @staticmethod
    def _slice(copy: tf.Tensor, first_row: int, shape) -> tf.Tensor:
        size = int(np.prod(shape))
        flat = tf.reshape(tf.slice(copy, [first_row, 0], [-(-size // ROW), ROW]), [-1])
        return tf.reshape(flat[:size] if size % ROW else flat, shape)

    def values(self, indices: Sequence[int] | None = None) -> list[tf.Tensor]:
        """The stored weights at `indices` (default: all, in order) as float32, read where this is
        called (read once before a search loop, not in every step). The output table's embeddings
        are only in `output_table()`."""
        copy = self._read()
        values = []
        for i in range(len(self._stored)) if indices is None else indices:
            variable = self._stored[i]
            if self._table is not None and i == self._table[0]:
                raise ValueError("the output table's embeddings are read through output_table()")
            if i in self._first_row:
                values.append(self._slice(copy, self._first_row[i], variable.shape))
            else:
                values.append(tf.convert_to_tensor(variable))
        return values

    def output_table(self) -> tf.Tensor:
        """The [dim + 1, columns] output table (see the class), read where this is called."""
        if self._table is None:
            raise ValueError("this copy holds no output table")
        return self._slice(self._read(), self._table_row, self._table_shape)
