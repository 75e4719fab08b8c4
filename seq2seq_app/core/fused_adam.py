"""Adam whose per-variable update is one fused TensorFlow kernel."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="seq2seq_app")
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam, updating each variable with TensorFlow's fused `ResourceApplyAdam` kernel.

    Keras 3 writes Adam's update as about eight element-wise operations per variable, each a pass
    over the variable's memory; on a CPU they took ~8 % of a translator's training step. The fused
    kernel (hand-called here: Keras 3 has no fused optimizer for the TensorFlow backend) does the
    same arithmetic in one pass: m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², and
    θ ← θ - lr·√(1-β₂ᵗ)/(1-β₁ᵗ)·m/(√v + ε), which is Keras's formula, so for a dense gradient
    results agree to float rounding. Clipping, loss scaling, gradient accumulation and
    distribution strategies are Keras's as before: only the last step changes (with `amsgrad` it
    is Keras's, on the gradient below).

    An embedding's gradient comes as slices, one per lookup. It is summed into rows first (a
    row's repeats in the batch added) and updated as a dense gradient, which is Adam as
    `tf.compat.v1.train.AdamOptimizer` and Keras 2 apply it. Keras 3 squares each slice before
    adding a row's repeats (v gains (1-β₂)Σg² where Adam's formula gives (1-β₂)(Σg)²) and then
    passes over the whole table anyway, in more operations: on the NSMC classifier's token and
    bigram tables that update was a fifth of a training step's op time (docs/benchmarks.md).

    Args:
        **kwargs: those of `keras.optimizers.Adam`.

    Example:
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=FusedAdam(1e-3, clipnorm=5.0), loss="mse")
    >>> model.train_on_batch(np.ones((4, 2)), np.zeros((4, 1))) >= 0
    True
    """

    def update_step(self, gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices):
            # A row's repeats summed (see the class), in the variable's precision as Keras adds them.
            gradient = tf.convert_to_tensor(tf.cast(gradient, variable.dtype))
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        # Inside a strategy's `update` call, `.handle` is this replica's copy of each variable.
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
