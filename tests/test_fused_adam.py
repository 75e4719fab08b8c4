import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core.fused_adam import FusedAdam

REPO = Path(__file__).resolve().parents[1]

_FIT = r"""
import keras, numpy as np, tensorflow as tf

class SummedRowsAdam(keras.optimizers.Adam):
    # Keras's Adam given an embedding's gradient summed into rows: what FusedAdam computes.

    def update_step(self, gradient, variable, learning_rate):
        return super().update_step(tf.convert_to_tensor(gradient), variable, learning_rate)


def fit(make_optimizer, strategy, epochs=2):
    # An embedding (sparse gradients; ids repeat in every batch) under two dense layers, 4 batches
    # an epoch; the optimizer is made in the strategy's scope.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, size=(32, 6))
    y = rng.normal(size=(32, 3)).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(1)
        layers = [
            keras.Input((6,), dtype="int32"),
            keras.layers.Embedding(10, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
        model = keras.Sequential(layers)
        model.compile(optimizer=make_optimizer(), loss="mse")
        model.optimizer.build(model.trainable_variables)  # as training does: the step traces once
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model
"""


_NAMESPACE = {}
exec(_FIT, _NAMESPACE)


def _fit(make_optimizer, epochs=2):
    return _NAMESPACE["fit"](make_optimizer, tf.distribute.get_strategy(), epochs)


@pytest.mark.parametrize("options", [{"clipnorm": 1.0}, {"amsgrad": True}])
def test_fused_adam_matches_keras_adam(options, monkeypatch):
    fused_updates = []
    kernel = tf.raw_ops.ResourceApplyAdam
    monkeypatch.setattr(
        tf.raw_ops, "ResourceApplyAdam", lambda **kw: fused_updates.append(kw) or kernel(**kw)
    )
    fused = _fit(lambda: FusedAdam(0.05, **options))
    # The step traced once: the embedding and the two dense layers' kernels and biases fused.
    assert len(fused_updates) == (0 if options.get("amsgrad") else 5)
    plain = _fit(lambda: _NAMESPACE["SummedRowsAdam"](0.05, **options))
    assert int(fused.optimizer.iterations) == int(plain.optimizer.iterations) == 8
    start = _fit(lambda: FusedAdam(0.05), epochs=0).get_weights()
    for a, b, first in zip(fused.get_weights(), plain.get_weights(), start):
        assert not np.allclose(a, first), "the update changed nothing"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)  # updates are ~0.05
    for a, b in zip(fused.optimizer.variables, plain.optimizer.variables):  # m, v and the step
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-8)


def test_an_embeddings_repeated_rows_are_summed_before_the_update_as_tf1_adam_does():
    # Rows 1 and 3 repeat within the batch; rows 0, 4 and 5 are never looked up.
    ids = tf.constant([1, 3, 1, 2, 1, 3])
    table = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    scale = tf.constant(np.random.default_rng(1).normal(size=(6, 4)).astype("float32"))

    def trained(apply):
        variable = tf.Variable(table)
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(variable, ids) * scale)
            gradient = tape.gradient(loss, variable)
            assert isinstance(gradient, tf.IndexedSlices)
            apply(gradient, variable)
        return variable.numpy()

    def keras_apply(optimizer):
        return lambda gradient, variable: optimizer.apply_gradients([(gradient, variable)])

    tf1 = tf.compat.v1.train.AdamOptimizer(0.1, epsilon=1e-7)
    expected = trained(lambda gradient, variable: tf1.apply_gradients([(gradient, variable)]))
    np.testing.assert_allclose(trained(keras_apply(FusedAdam(0.1))), expected, rtol=1e-5, atol=1e-6)
    # Keras 3's Adam squares each lookup's slice: a repeated row moves differently.
    keras_adam = trained(keras_apply(keras.optimizers.Adam(0.1)))
    assert not np.allclose(keras_adam[[1, 3]], expected[[1, 3]], atol=1e-4)
    np.testing.assert_allclose(keras_adam[[0, 2, 4, 5]], expected[[0, 2, 4, 5]], rtol=1e-5, atol=1e-6)


def test_fused_adam_config_round_trip():
    optimizer = FusedAdam(0.01, beta_1=0.8, clipnorm=2.0)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(clone) is FusedAdam
    assert clone.get_config() == optimizer.get_config()


# Two logical CPU devices must be made before TensorFlow starts: a process of its own. Its
# optimizer's variables are the step, the learning rate, then m and v of each weight.
_MIRRORED = (
    _FIT
    + r"""
from seq2seq_app.core.fused_adam import FusedAdam
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
fused = fit(lambda: FusedAdam(0.05, clipnorm=1.0), strategy)
plain = fit(lambda: SummedRowsAdam(0.05, clipnorm=1.0), strategy)
for a, b in zip(fused.trainable_variables, plain.trainable_variables):
    copies = a.value.values
    assert len(copies) == 2
    for copy in copies:  # every replica's copy updated, and alike
        np.testing.assert_allclose(copy.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
for a, b in zip(fused.optimizer.variables[2:], plain.optimizer.variables[2:]):  # m and v
    for copy in a.value.values:
        np.testing.assert_allclose(copy.numpy(), b.numpy(), rtol=1e-3, atol=1e-8)
print("ok")
"""
)


@pytest.mark.slow  # a process of its own
def test_fused_adam_updates_every_replica_under_mirrored_strategy():
    out = subprocess.run(
        [sys.executable, "-c", _MIRRORED],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
