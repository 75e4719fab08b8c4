"""Two repairs that let Keras 3's `fit` run under `MultiWorkerMirroredStrategy`.

Keras 3.15's TensorFlow trainer has two multi-worker bugs (keras-team/keras#20585,
tensorflow/tensorflow#72388, keras-team/keras#20329):

- before the first step it all-reduces a whole input batch to learn its shapes, which fails for a
  dict of inputs ("unsupported type <class 'dict'>") and could not work for batches whose shapes
  differ between workers (length-bucketed batches do);
- it averages each step's scalar logs with `strategy.reduce("MEAN", v, axis=0)`, which fails for a
  scalar ("Invalid reduction dimension 0 for input with 0 dimensions").

`multi_worker_fit` replaces both, for the duration of one `fit`, with what they mean to do: build
from this worker's own batch, and average the logs over replicas (`axis=None`). It touches Keras
internals, so it is confined to this module (and the backup callback in `training.callbacks`) and
exercised by the 2-worker tests; under any other strategy it changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import keras
import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

_original_reduce_per_replica = tf_trainer.reduce_per_replica


def _is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def _reduce_per_replica(values, strategy, reduction):
    if _is_multi_worker(strategy) and reduction in ("auto", "mean"):
        return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
    return _original_reduce_per_replica(values, strategy, reduction)


def _build_from_local_batch(model: keras.Model):
    strategy = model.distribute_strategy

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    return maybe_symbolic_build


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model) -> Iterator[None]:
    """Context for `model.fit` under a strategy of several replicas (a no-op for one)."""
    strategy = model.distribute_strategy
    with contextlib.ExitStack() as stack:
        if strategy.num_replicas_in_sync > 1:
            stack.enter_context(
                mock.patch.object(model, "_maybe_symbolic_build", _build_from_local_batch(model))
            )
        if _is_multi_worker(strategy):
            stack.enter_context(mock.patch.object(tf_trainer, "reduce_per_replica", _reduce_per_replica))
        yield
