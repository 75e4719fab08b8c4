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

    A matrix listed in `transposed` is held transposed instead (whatever its stored dtype), for a
    product that reads it as the right operand: TensorFlow's CPU matmul repacks a transposed
    right operand on every call, and transposing it in every call would cost as much.

    Args:
        stored: the SavedModel's variables (see `stored_variable`), tracked by their owner.
        transposed: indices into `stored` of matrices the copy holds (and `values` gives) transposed.

    Example:
    >>> kernel = stored_variable(tf.Variable(tf.ones([3, 2])))
    >>> Float32Copy([kernel]).values()[0].dtype
    tf.float32
    """

    def __init__(self, stored: Sequence[tf.Variable], transposed: Sequence[int] = ()):
        # A plain list: a resource does not track attributes, and the variables belong to the
        # SavedModel under their owner's names.
        self._stored = list(stored)
        self._transposed = frozenset(transposed)
        if any(self._stored[i].shape.rank != 2 for i in self._transposed):
            raise ValueError("only matrices can be held transposed")
        self._copied = [
            i for i, v in enumerate(self._stored) if v.dtype == tf.float16 or i in self._transposed
        ]
        self._first_row = {}
        rows = 0
        for i in self._copied:
            self._first_row[i] = rows
            rows += -(-self._stored[i].shape.num_elements() // ROW)
        self._rows = rows
        # Named after the stored weights and numbered per process, so two exports in one process
        # never share a copy (refreshing one would change the other) and a fresh process
        # saving the same weights writes the same graph; loaders rename it once more per load.
        digest = hashlib.sha256()
        for i, variable in enumerate(self._stored):
            digest.update(str(variable.shape).encode() + variable.dtype.name.encode())
            digest.update(variable.numpy().tobytes() + (b"T" if i in self._transposed else b""))
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
        rows = [tf.zeros([0, ROW])]
        for i in self._copied:
            value = self._stored[i]
            if i in self._transposed:  # in its stored dtype: half the bytes of a float32 transpose
                value = tf.transpose(value)
            flat = tf.reshape(tf.cast(value, tf.float32), [-1])
            padding = -flat.shape[0] % ROW
            rows.append(tf.reshape(tf.pad(flat, [[0, padding]]), [-1, ROW]))
        return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=tf.concat(rows, 0))

    def refill(self) -> None:
        """Copies the stored variables into the copy again, after they were assigned to."""
        self._initialize()

    def values(self, indices: Sequence[int] | None = None) -> list[tf.Tensor]:
        """The stored weights at `indices` (default: all, in order) as float32, those in
        `transposed` transposed, read where this is called (read once before a search loop, not in
        every step)."""
        copy = tf.raw_ops.ReadVariableOp(resource=self.resource_handle, dtype=tf.float32)
        copy = tf.ensure_shape(copy, [self._rows, ROW])
        values = []
        for i in range(len(self._stored)) if indices is None else indices:
            variable = self._stored[i]
            if i not in self._first_row:
                values.append(tf.convert_to_tensor(variable))
                continue
            size = variable.shape.num_elements()
            rows = tf.slice(copy, [self._first_row[i], 0], [-(-size // ROW), ROW])
            flat = tf.reshape(rows, [-1])
            if size % ROW:
                flat = flat[:size]
            shape = list(reversed(variable.shape)) if i in self._transposed else variable.shape
            values.append(tf.reshape(flat, shape))
        return values
