"""Shared checks for our Keras layers and models, in the spirit of keras-hub's TestCase."""

from __future__ import annotations

import keras
import numpy as np


def check_config_round_trip(layer: keras.layers.Layer, *inputs, **call_kwargs):
    """from_config(get_config()) gives a layer that, with the same weights, gives the same outputs."""
    outputs = layer(*inputs, **call_kwargs)
    clone = layer.__class__.from_config(layer.get_config())
    clone(*inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    for a, b in zip(keras.tree.flatten(outputs), keras.tree.flatten(clone(*inputs, **call_kwargs))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    return outputs


def check_fit_and_save_load(model: keras.Model, x, y, tmp_path, loss):
    """One training step changes the weights; .keras save → load gives identical outputs."""
    model.compile(optimizer="adam", loss=loss)
    model(x)  # build every weight before taking the snapshot
    model.optimizer.build(model.trainable_variables)  # not inside the step's trace: it traces once
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=len(y), verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights())), "fit changed nothing"
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(restored(x)), rtol=1e-6, atol=1e-6)
