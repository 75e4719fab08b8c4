import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.core.export_base import MAX_BEAM, ExportBase


class Echo(ExportBase):
    """Upper-cases texts through a one-weight Keras model; an empty batch runs one stand-in row."""

    SIGNATURES = ("shout", "beams")

    def __init__(self):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="dense")])
        super().__init__(model)
        self._model = model.__call__

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def shout(self, text):
        texts = self.non_empty(text, tf.constant(["stand-in"]))
        rows = self._model(tf.ones([tf.shape(texts)[0], 1]))
        return self.sliced({"text": tf.strings.upper(texts), "rows": rows[:, 0]}, text)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="beam_size")])
    def beams(self, beam_size):
        k = self.beam_size(beam_size)
        ids = tf.reshape(tf.range(2 * k * 3), [2, k, 3])
        return {"candidates": self.candidate_texts(lambda flat: tf.strings.as_string(flat[:, 0]), ids)}


def test_empty_batches_run_a_stand_in_and_come_back_empty():
    export = Echo()
    assert export.shout(tf.constant([], tf.string))["text"].shape == (0,)
    out = export.shout(tf.constant(["a", "b"]))
    assert out["text"].numpy().tolist() == [b"A", b"B"] and out["rows"].shape == (2,)


def test_beam_sizes_are_clamped_and_candidates_keep_their_rows():
    export = Echo()
    assert export.beams(tf.constant(0))["candidates"].numpy().tolist() == [[b"0"], [b"3"]]
    assert export.beams(tf.constant(1000))["candidates"].shape == (2, MAX_BEAM)
    three = export.beams(tf.constant(3))["candidates"].numpy().tolist()
    assert three == [[b"0", b"3", b"6"], [b"9", b"12", b"15"]]


def test_save_writes_every_signature_and_the_weights_once(tmp_path):
    export = Echo()
    export.save(tmp_path / "echo")
    loaded = tf.saved_model.load(str(tmp_path / "echo"))
    assert set(loaded.signatures) == {"shout", "beams", "serving_default"}
    out = loaded.signatures["serving_default"](text=tf.constant(["x"]))
    np.testing.assert_allclose(out["rows"].numpy(), export.shout(tf.constant(["x"]))["rows"].numpy())
    stored = tf.train.list_variables(str(tmp_path / "echo" / "variables" / "variables"))
    weights = [name for name, _ in stored if name.endswith("VARIABLE_VALUE")]
    assert len(weights) == 2  # kernel and bias, not a second copy through the Keras model
