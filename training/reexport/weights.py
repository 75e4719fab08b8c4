"""Weights of a SavedModel copied into a rebuilt Keras model, checked pair by pair."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def copy_variables(source: Sequence[tf.Variable], target: Sequence) -> None:
    """Assigns `source[i]` to `target[i]` (Keras variables), after checking that both lists have the
    same length and every pair the same name and shape."""
    if len(source) != len(target):
        raise ValueError(f"the SavedModel has {len(source)} variables, the rebuilt model {len(target)}")
    for i, (old, new) in enumerate(zip(source, target)):
        if old.name != new.value.name or old.shape != tuple(new.shape):
            raise ValueError(
                f"variable {i}: the SavedModel has {old.name} {old.shape.as_list()}, "
                f"the rebuilt model {new.value.name} {list(new.shape)}"
            )
    for old, new in zip(source, target):
        new.assign(old.numpy().astype(new.dtype))
