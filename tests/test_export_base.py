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
        (model,) = self.with_weights(self._model)
        rows = model(tf.ones([tf.shape(texts)[0], 1]))
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
    dtypes = tf.train.load_checkpoint(
        str(tmp_path / "echo" / "variables" / "variables")
    ).get_variable_to_dtype_map()
    assert sorted(dtypes[name].name for name in weights) == ["float16", "float32"]  # the kernel is a matrix


class Projection(ExportBase):
    """A Dense layer whose kernel spans several rows of the float32 copy, with an odd size."""

    SIGNATURES = ("project",)

    def __init__(self, kernel: np.ndarray):
        model = keras.Sequential([keras.Input((kernel.shape[0],)), keras.layers.Dense(kernel.shape[1])])
        model.layers[0].kernel.assign(kernel)
        super().__init__(model)
        self._model = model.__call__

    @tf.function(input_signature=[tf.TensorSpec([None, 7], tf.float32, name="x")], autograph=False)
    def project(self, x):
        (model,) = self.with_weights(self._model)
        return {"y": model(x)}


def test_float16_storage_is_the_model_within_rounding_in_every_loader(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(7, 5)).astype(np.float32)  # 35 values: three rows, the last one padded
    kernel[0, 0] = 1e5  # beyond float16: this weight stays float32
    small = rng.normal(size=(7, 5)).astype(np.float32)
    x = rng.normal(size=(3, 7)).astype(np.float32)
    for weights in (kernel, small):
        export = Projection(weights)
        export.save(tmp_path / "p")
        dtypes = {v.name: v.dtype for v in export.model_variables}
        assert list(dtypes.values()) == [tf.float32 if weights is kernel else tf.float16, tf.float32]
        exact = x @ weights
        tolerance = 2e-3 * np.abs(x) @ np.abs(weights)  # float16 rounds each weight by at most 2⁻¹¹
        np.testing.assert_array_less(np.abs(export.project(x)["y"].numpy() - exact), tolerance + 1e-6)
        loaded = tf.saved_model.load(str(tmp_path / "p"))
        again = tf.saved_model.load(str(tmp_path / "p"))  # a second load shares the copy
        del loaded
        np.testing.assert_array_equal(again.project(x)["y"].numpy(), export.project(x)["y"].numpy())
        # The TF1 loader (what stock TF Serving runs): restore, then the init op fills the copy.
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "p"))
            signature = meta.signature_def["serving_default"]
            served = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: x})
        np.testing.assert_allclose(served, export.project(x)["y"].numpy(), rtol=1e-6, atol=1e-6)
