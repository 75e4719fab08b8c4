import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core import decoding
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


class Scorer(keras.layers.Layer):
    """Scores `dim` features against a [vocab, dim] table plus a bias, as a tied output layer."""

    def __init__(self, vocab: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.table = self.add_weight(shape=(vocab, dim), name="table")
        self.bias = self.add_weight(shape=(vocab,), initializer="zeros", name="bias")

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.transpose(self.table)) + self.bias


class OutputLayer(ExportBase):
    """A `Scorer` whose signature reads its weights only as the output table."""

    SIGNATURES = ("project",)
    BANNED = (1,)

    def __init__(self, table: np.ndarray, bias: np.ndarray, float16_storage: bool = True):
        scorer = Scorer(*table.shape)
        model = keras.Sequential([keras.Input((table.shape[1],)), scorer])
        scorer.table.assign(table)
        scorer.bias.assign(bias)
        self.weights_of = lambda: (scorer.table, scorer.bias)  # not attributes: they would be saved again
        super().__init__(
            model, float16_storage=float16_storage, output_layer=self.weights_of(), banned_ids=self.BANNED
        )

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32, name="x")], autograph=False)
    def project(self, x):
        table = self.decoder_tables()["output_table"]
        return {"y": tf.matmul(tf.concat([x, tf.ones_like(x[:, :1])], 1), table)}


def _table(seed=2, vocab=7, dim=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(vocab, dim)).astype(np.float32), rng.normal(size=vocab).astype(np.float32)


@pytest.mark.parametrize("float16_storage", [True, False])
def test_the_output_table_holds_the_embeddings_bias_bans_and_whole_blocks(float16_storage):
    table, bias = _table()
    tables = OutputLayer(table, bias, float16_storage).decoder_tables()
    out = tables["output_table"].numpy()
    assert out.shape == (6, decoding.TOP_K_BLOCK)  # dim + the bias row, columns padded to a block
    rows = tf.cast(tables["embedding_rows"], tf.float32).numpy()
    assert tables["embedding_rows"].dtype == (tf.float16 if float16_storage else tf.float32)
    np.testing.assert_array_equal(rows, out[:5, :7].T)  # the rows gathered are the columns scored
    assert (out[:5, 7:] == 0).all()
    allowed = [i for i in range(7) if i not in OutputLayer.BANNED]
    np.testing.assert_array_equal(out[5, allowed], bias[allowed])
    assert (out[5, 7:] <= decoding.NEG_INF).all() and (
        out[5, list(OutputLayer.BANNED)] <= decoding.NEG_INF / 2
    ).all()


def test_the_output_layer_is_stored_once_in_its_own_shape_and_scores_in_one_product(tmp_path):
    table, bias = _table()
    x = np.random.default_rng(3).normal(size=(3, 5)).astype(np.float32)
    exact = x @ table.T + bias
    allowed = [i for i in range(7) if i not in OutputLayer.BANNED]
    export = OutputLayer(table, bias)
    out = export.project(x)["y"].numpy()
    assert out.shape == (3, decoding.TOP_K_BLOCK)
    np.testing.assert_allclose(out[:, allowed], exact[:, allowed], rtol=2e-2, atol=2e-2 * np.abs(exact).max())
    assert (np.delete(out, allowed, axis=1) <= decoding.NEG_INF / 2).all()  # banned and padding
    export.save(tmp_path / "t")
    stored = tf.train.list_variables(str(tmp_path / "t" / "variables" / "variables"))
    shapes = sorted(shape for name, shape in stored if name.endswith("VARIABLE_VALUE"))
    assert shapes == [[7], [7, 5]]  # the bias and the table, once, as the model has them
    loaded = tf.saved_model.load(str(tmp_path / "t"))  # held: its functions need its variables
    np.testing.assert_array_equal(loaded.project(x)["y"].numpy(), out)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:  # as TF Serving loads it
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "t"))
        signature = meta.signature_def["serving_default"]
        served = session.run(signature.outputs["y"].name, {signature.inputs["x"].name: x})
    np.testing.assert_allclose(served, out, rtol=1e-6, atol=1e-6)
    # Float32 storage: the same table, exact, and refreshed with the rest.
    exact_export = OutputLayer(table, bias, float16_storage=False)
    np.testing.assert_allclose(
        exact_export.project(x)["y"].numpy()[:, allowed], exact[:, allowed], rtol=1e-5, atol=1e-5
    )
    scorer_table, scorer_bias = exact_export.weights_of()
    scorer_table.assign(2 * table)
    scorer_bias.assign(np.zeros(7, np.float32))
    exact_export.refresh_weights()
    np.testing.assert_allclose(
        exact_export.project(x)["y"].numpy()[:, allowed], 2 * (x @ table.T)[:, allowed], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="read through output_table"):
        export.float32_copy.values([0])
    with pytest.raises(ValueError, match="needs \\[vocab, dim\\] embeddings"):
        Float32Copy(export.model_variables, (1, 0, np.zeros(7)))  # the bias as the table
    with pytest.raises(ValueError, match="holds no output table"):
        Float32Copy(export.model_variables).output_table()
    with pytest.raises(ValueError, match="weights of the exported models"):
        ExportBase(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
            output_layer=exact_export.weights_of(),
        )


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
