import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core.export_base import MAX_BEAM, ExportBase
from seq2seq_app.core.float32_copy import Float32Copy, stored_variable


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


class Transposing(ExportBase):
    """A Dense layer whose kernel the signature reads only transposed, from `transposed_weights`."""

    SIGNATURES = ("project",)

    def __init__(self, kernel: np.ndarray, float16_storage: bool = True):
        model = keras.Sequential([keras.Input((kernel.shape[0],)), keras.layers.Dense(kernel.shape[1])])
        model.layers[0].kernel.assign(kernel)
        self.kernel = lambda: model.layers[0].kernel  # not an attribute: it would be saved again
        super().__init__(model, float16_storage=float16_storage, transposed=[model.layers[0].kernel])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")], autograph=False)
    def project(self, x):
        (table,) = self.transposed_weights()  # [units, inputs]
        return {"y": tf.matmul(x, table, transpose_b=True)}


@pytest.mark.parametrize("float16_storage", [True, False])
def test_decoder_tables_rows_equal_the_transposed_copy_exactly(float16_storage):
    kernel = np.random.default_rng(3).normal(size=(7, 5)).astype(np.float32)
    tables = Transposing(kernel, float16_storage).decoder_tables()
    rows = tf.cast(tables["embedding_rows"], tf.float32).numpy()
    assert tables["embedding_rows"].dtype == (tf.float16 if float16_storage else tf.float32)
    np.testing.assert_array_equal(rows, tables["output_table"].numpy().T)


def test_a_transposed_weight_is_stored_once_in_its_own_shape_and_read_transposed(tmp_path):
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(7, 5)).astype(np.float32)
    x = rng.normal(size=(3, 7)).astype(np.float32)
    export = Transposing(kernel)
    assert export.transposed_weights()[0].shape == (5, 7)
    out = export.project(x)["y"].numpy()
    np.testing.assert_allclose(out, x @ kernel, rtol=2e-2, atol=2e-2 * np.abs(x @ kernel).max())
    export.save(tmp_path / "t")
    stored = tf.train.list_variables(str(tmp_path / "t" / "variables" / "variables"))
    shapes = sorted(shape for name, shape in stored if name.endswith("VARIABLE_VALUE"))
    assert shapes == [[5], [7, 5]]  # the bias and the kernel, once, as the model has it
    loaded = tf.saved_model.load(str(tmp_path / "t"))  # held: its functions need its variables
    np.testing.assert_array_equal(loaded.project(x)["y"].numpy(), out)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:  # as TF Serving loads it
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "t"))
        signature = meta.signature_def["serving_default"]
        served = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: x})
    np.testing.assert_allclose(served, out, rtol=1e-6, atol=1e-6)
    # A float32 weight is copied too, so it can be held transposed, and refreshed like the rest.
    exact = Transposing(kernel, float16_storage=False)
    exact.kernel().assign(2 * kernel)
    exact.refresh_weights()
    np.testing.assert_allclose(exact.project(x)["y"].numpy(), 2 * x @ kernel, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="only matrices"):
        Float32Copy(export.model_variables, transposed=[1])  # the bias
    with pytest.raises(ValueError, match="weights of the exported models"):
        ExportBase(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), transposed=[exact.kernel()])


class Projection(ExportBase):
    """Two Dense layers whose kernels start on later rows of the float32 copy and have odd sizes."""

    SIGNATURES = ("project",)

    def __init__(self, first: np.ndarray, second: np.ndarray, float16_storage: bool = True):
        model = keras.Sequential(
            [
                keras.Input((first.shape[0],)),
                keras.layers.Dense(first.shape[1]),
                keras.layers.Dense(second.shape[1]),
            ]
        )
        model.layers[0].kernel.assign(first)
        model.layers[1].kernel.assign(second)
        super().__init__(model, float16_storage=float16_storage)
        self._model = model.__call__

    @tf.function(input_signature=[tf.TensorSpec([None, 7], tf.float32, name="x")], autograph=False)
    def project(self, x):
        (model,) = self.with_weights(self._model)
        return {"y": model(x)}


def test_float16_storage_is_the_model_within_rounding_in_every_loader(tmp_path):
    rng = np.random.default_rng(0)
    first = rng.normal(size=(7, 5)).astype(np.float32)  # 35 values: three rows of the copy, padded
    second = rng.normal(size=(5, 3)).astype(np.float32)  # 15 values: one row, padded
    x = rng.normal(size=(3, 7)).astype(np.float32)
    wide = first.copy()
    wide[0, 0] = 1e5  # beyond float16: this kernel stays float32, the other one does not
    for kernels, halves in [((first, second), [True, True]), ((wide, second), [False, True])]:
        export = Projection(*kernels)
        kinds = [v.dtype for v in export.model_variables]  # kernel, bias, kernel, bias
        assert [kinds[0], kinds[2]] == [tf.float16 if h else tf.float32 for h in halves]
        assert kinds[1] == kinds[3] == tf.float32  # the biases are vectors
        exact = (x @ kernels[0]) @ kernels[1]  # zero biases, no activations
        out = export.project(x)["y"].numpy()
        np.testing.assert_allclose(out, exact, rtol=2e-2, atol=2e-2 * np.abs(exact).max())
        export.save(tmp_path / "p")
        # Empty the shared copy: a load must fill it again from the stored variables.
        empty = tf.zeros_like(
            tf.raw_ops.ReadVariableOp(resource=export.float32_copy.resource_handle, dtype=tf.float32)
        )
        tf.raw_ops.AssignVariableOp(resource=export.float32_copy.resource_handle, value=empty)
        loaded = tf.saved_model.load(str(tmp_path / "p"))
        np.testing.assert_array_equal(loaded.project(x)["y"].numpy(), out)
        again = tf.saved_model.load(str(tmp_path / "p"))  # each load fills a copy of its own
        del loaded
        np.testing.assert_array_equal(again.project(x)["y"].numpy(), out)
        # The TF1 loader (the steps stock TF Serving takes: restore, then the init op).
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "p"))
            signature = meta.signature_def["serving_default"]
            served = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: x})
        np.testing.assert_allclose(served, out, rtol=1e-6, atol=1e-6)


def test_an_export_takes_its_models_new_weights_only_when_refreshed():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="float16_storage=False"):
        Projection(first, second).refresh_weights()
    export = Projection(first, second, float16_storage=False)
    x = rng.normal(size=(2, 7)).astype(np.float32)
    before = export.project(x)["y"].numpy()
    keras_weights = export._keras_weights()
    keras_weights[2].assign(np.zeros((5, 3), np.float32))  # the second kernel
    np.testing.assert_array_equal(export.project(x)["y"].numpy(), before)
    export.refresh_weights()
    np.testing.assert_array_equal(export.project(x)["y"].numpy(), np.zeros((2, 3)))


def test_stored_variables_keep_names_and_take_float16_only_where_it_is_close():
    tiny = tf.Variable(np.full((4, 4), 1e-9, np.float32), name="tiny")  # all flush to zero: too far
    mixed = np.ones((4, 4), np.float32)
    mixed[0, 0] = 1e-9  # one value lost beside values of 1: close enough
    kinds = {
        v.name: v.dtype
        for v in (
            stored_variable(tiny),
            stored_variable(tf.Variable(mixed, name="mixed")),
            stored_variable(tf.Variable(np.ones(4, np.float32), name="bias")),
            stored_variable(tf.Variable(np.zeros((0, 3), np.float32), name="empty")),
            stored_variable(tf.Variable(mixed, name="exact"), float16=False),
        )
    }
    assert kinds == {
        "tiny:0": tf.float32,
        "mixed:0": tf.float16,
        "bias:0": tf.float32,
        "empty:0": tf.float32,
        "exact:0": tf.float32,
    }
