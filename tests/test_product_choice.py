import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from seq2seq_app.core import recurrence
from seq2seq_app.core.export_base import ExportBase
from seq2seq_app.core.product_choice import ProductChoice
from tests.plain_tf import run_with_tensorflow_alone

MARK = 1000.0  # what the marked split product adds, so a result shows which form ran


def test_one_bool_per_shape():
    choice = ProductChoice([(320, 960), (300, 1200)]).choice()
    assert sorted(choice) == [(300, 1200), (320, 960)]
    assert all(value.dtype == tf.bool and value.shape == () for value in choice.values())


@pytest.mark.parametrize("shapes", [[], [(256, 768)], [(320, 960), (64, 192)]])
def test_shapes_without_a_split_form_are_refused(shapes):
    with pytest.raises(ValueError, match="must have a split form"):
        ProductChoice(shapes)


def test_the_forms_compute_the_same_product():
    rng = np.random.default_rng(0)
    h = tf.constant(rng.normal(size=(3, 300)), tf.float32)
    kernel = tf.constant(rng.normal(size=(300, 900)), tf.float32)
    np.testing.assert_allclose(
        recurrence.split_product(h, kernel), tf.matmul(h, kernel), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("split", [True, False])
def test_the_choice_decides_the_few_row_product(split, monkeypatch):
    plain = recurrence.split_product
    monkeypatch.setattr(recurrence, "split_product", lambda h, kernel: plain(h, kernel) + MARK)
    h = tf.ones([3, 300]) / 300
    kernel = tf.ones([300, 900])

    @tf.function(autograph=False)
    def product(h, chosen):
        with recurrence.few_row_split({(300, 900): chosen}):
            return recurrence._recurrent_product(h, kernel)

    np.testing.assert_allclose(product(h, tf.constant(split)), 1.0 + (MARK if split else 0.0), rtol=1e-5)
    # Many rows take the whole product whatever the choice; without a choice few rows are split.
    np.testing.assert_allclose(product(tf.tile(h, [4, 1]), tf.constant(True)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(recurrence._recurrent_product(h, kernel), 1.0 + MARK, rtol=1e-5)


def test_an_export_times_the_products_recurrence_can_split():
    def export(units):
        return ExportBase(keras.Sequential([keras.Input((None, 4)), keras.layers.GRU(units)]))

    assert export(8).product_choice is None
    assert sorted(export(260).product_choice.choice()) == [(260, 780)]


@pytest.mark.parametrize("split", [True, False])
def test_the_export_s_model_functions_take_its_choice(split, monkeypatch):
    plain = recurrence.split_product
    monkeypatch.setattr(recurrence, "split_product", lambda h, kernel: plain(h, kernel) + MARK)
    export = ExportBase(keras.Sequential([keras.Input((None, 4)), keras.layers.GRU(260)]))
    tf.raw_ops.AssignVariableOp(resource=export.product_choice.resource_handle, value=tf.constant([split]))

    @tf.function(autograph=False)
    def product():
        (function,) = export.with_weights(
            lambda: recurrence._recurrent_product(tf.ones([1, 260]) / 260, tf.ones([260, 780]))
        )
        return function()

    np.testing.assert_allclose(product(), 1.0 + (MARK if split else 0.0), rtol=1e-5)


@pytest.fixture(scope="module")
def saved_choice(tmp_path_factory):
    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.product_choice = ProductChoice([(320, 960)])

        @tf.function(input_signature=[], autograph=False)
        def split(self):
            return self.product_choice.choice()[(320, 960)]

    path = tmp_path_factory.mktemp("choice")
    module = Module()
    tf.saved_model.save(module, str(path), signatures={"split": module.split})
    return path


def test_a_loaded_model_times_the_forms_again(saved_choice):
    # The timing itself is saved, as the resource's initializer, not its result.
    saved = saved_model_pb2.SavedModel.FromString((saved_choice / "saved_model.pb").read_bytes())
    library = saved.meta_graphs[0].graph_def.library
    ops = {node.op for function in library.function for node in function.node_def}
    assert {"Timestamp", "AssignVariableOp"} <= ops
    assert tf.saved_model.load(str(saved_choice)).split().dtype == tf.bool
    # The TF1 loader (the steps of TF Serving's C++ loader) runs the initializer too.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.load(session, ["serve"], str(saved_choice))
        output = next(iter(meta.signature_def["split"].outputs.values())).name
        assert session.run(output) in (True, False)


@pytest.mark.slow
def test_the_timing_runs_with_tensorflow_alone(saved_choice, tmp_path):
    script = "print(bool(tf.saved_model.load(sys.argv[1]).split()))"
    assert run_with_tensorflow_alone(script, saved_choice, tmp_path).strip() in ("True", "False")
