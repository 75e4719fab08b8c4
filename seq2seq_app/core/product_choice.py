"""Which form of a few-row recurrent product is faster, measured on the machine that loads a model."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import tensorflow as tf

from seq2seq_app.core import recurrence

REPEATS = 16  # chained products per timing
ROUNDS = 4  # timings of each form, alternating, after one warm-up each; the fastest counts
# How much faster the split form must be to be taken. The forms round differently, so a choice
# that flipped from load to load where they are close would change outputs in the last bits;
# where split pays it paid 2.5x.
SPLIT_MARGIN = 1.2
_NUMBERS = itertools.count()


class ProductChoice(tf.saved_model.experimental.TrackableResource):
    """Per recurrent kernel shape, whether one row times the kernel runs faster split into blocks
    (`recurrence.split_product`) than whole, timed when the SavedModel loads.

    Which form is faster depends on the CPU: for a GRU of 320 units ([1, 320] × [320, 960])
    TensorFlow's oneDNN matmul took 2.5x as long whole as split on an AVX-512 CPU, while on an
    AVX2-only CPU the split product was the slower (docs/benchmarks.md, "The split product, chosen
    where the model loads"). A SavedModel runs on machines its exporter never saw, so the choice
    is made where it runs: the resource's initializer, which loaders run after restoring the
    variables (`tf.saved_model.load`, TF Serving's C++ loader), times both forms with
    `tf.timestamp` in chained products of one row (a sentence's search) on random operands and
    stores one bool per shape; split is taken only when `SPLIT_MARGIN` times faster. Both forms
    compute the same product up to float rounding, so two machines may differ in the last bits
    of a score, as they do whenever their matmul kernels differ. This is autotuning as cuDNN and
    oneDNN do it for their own kernels; no library offers it for a choice between TensorFlow
    graphs, so it is written here with core ops.

    Args:
        shapes: the distinct [inner, columns] shapes of the recurrent kernels with a split form
            (`recurrence.splits`): more than `recurrence.BLOCK` inner entries.

    Example:
    >>> choice = ProductChoice([(320, 960)])
    >>> sorted(choice.choice())
    [(320, 960)]
    """

    def __init__(self, shapes: Sequence[tuple[int, int]]):
        self._shapes = [tuple(int(d) for d in shape) for shape in shapes]
        if not self._shapes or not all(recurrence.splits(shape) for shape in self._shapes):
            raise ValueError(
                f"every shape must have a split form (more than {recurrence.BLOCK} inner entries)"
            )
        # Numbered per process, as `Float32Copy`, so the same export script writes the same graph.
        self._shared_name = f"product_choice_{'_'.join(f'{i}x{c}' for i, c in self._shapes)}_{next(_NUMBERS)}"
        super().__init__()
        self._initialize()

    # No `_destroy_resource`, as `Float32Copy`: a loaded model's signatures outlive the loaded object.
    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.bool, shape=[len(self._shapes)], shared_name=self._shared_name)

    def _initialize(self):
        # As a graph, also when an export is built eagerly: timed eagerly, the split form's extra ops
        # would each pay Python's overhead.
        timed = tf.function(
            lambda: tf.stack([_split_is_faster(shape) for shape in self._shapes]), autograph=False
        )
        return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=timed())

    def choice(self) -> dict[tuple[int, int], tf.Tensor]:
        """{shape: whether few rows take the split product}, read where this is called (for
        `recurrence.few_row_split`)."""
        read = tf.raw_ops.ReadVariableOp(resource=self.resource_handle, dtype=tf.bool)
        return dict(zip(self._shapes, tf.unstack(tf.ensure_shape(read, [len(self._shapes)]))))


def _split_is_faster(shape: tuple[int, int]) -> tf.Tensor:
    """Whether `REPEATS` chained one-row products by a random [inner, columns] kernel ran
    `SPLIT_MARGIN` times faster split than whole, the fastest of `ROUNDS` timings of each (a
    warm-up of each first: the first call of a oneDNN product builds its kernel)."""
    inner, columns = shape
    # Random, not constant, operands: a product of constants could be folded away.
    kernel = tf.random.uniform([inner, columns], -0.1, 0.1)
    start_row = tf.random.uniform([1, inner], -1.0, 1.0)
    forms = (lambda h: tf.matmul(h, kernel), lambda h: recurrence.split_product(h, kernel))
    after = start_row
    times = [[], []]
    for round_ in range(ROUNDS + 1):
        for form in (0, 1) if round_ % 2 else (1, 0):
            with tf.control_dependencies([after]):
                start = tf.timestamp()
            with tf.control_dependencies([start]):
                _, after = tf.while_loop(
                    lambda i, _: i < REPEATS,
                    # The next row depends on this product, as a recurrence's does; tanh keeps it
                    # bounded.
                    lambda i, h, form=form: (i + 1, tf.tanh(forms[form](h)[:, :inner])),
                    (tf.constant(0), after),
                )
            with tf.control_dependencies([after]):
                elapsed = tf.timestamp() - start
            if round_:
                times[form].append(elapsed)
    return SPLIT_MARGIN * tf.reduce_min(tf.stack(times[1])) < tf.reduce_min(tf.stack(times[0]))
