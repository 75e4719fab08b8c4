import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core import recurrence
from seq2seq_app.core.product_choice import ProductChoice
from tests.plain_tf import run_with_tensorflow_alone


def test_one_bool_per_shape():
    choice = ProductChoice([(320, 960), (300, 1200)]).choice()
    assert sorted(choice) == [(300, 1200), (320, 960)]
    assert all(value.dtype == tf.bool and value.shape == () for value in choice.values())


@pytest.mark.parametrize("shapes", [[], [(256, 768)], [(320, 960), (64, 192)]])
def test_shapes_without_a_split_form_are_refused(shapes):
    with pytest.raises(ValueError, match="split form"):
        ProductChoice(shapes)


@pytest.mark.parametrize("split", [True, False])
def test_the_choice_decides_the_few_row_product(split):
    rng = np.random.default_rng(0)
    # A wide range of magnitudes, so the two forms round differently and the test sees which ran.
    h = tf.constant(rng.normal(size=(3, 300)) * 10.0 ** rng.integers(-3, 4, size=(3, 300)), tf.float32)
    kernel = tf.constant(rng.normal(size=(300, 900)), tf.float32)
    whole, parts = tf.matmul(h, kernel).numpy(), recurrence.split_product(h, kernel).numpy()
    assert not np.array_equal(whole, parts)
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-5 * np.abs(whole).max())

    @tf.function(autograph=False)
    def product(h, chosen):
        with recurrence.few_row_split({(300, 900): chosen}):
            return recurrence._recurrent_product(h, kernel)

    np.testing.assert_array_equal(product(h, tf.constant(split)).numpy(), parts if split else whole)
    # Many rows take the whole product whatever the choice; without a choice few rows are split.
    many = tf.tile(h, [4, 1])
    np.testing.assert_array_equal(product(many, tf.constant(True)).numpy(), tf.matmul(many, kernel).numpy())
    np.testing.assert_array_equal(recurrence._recurrent_product(h, kernel).numpy(), parts)


def test_a_loaded_model_times_the_forms_again(tmp_path):
    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.product_choice = ProductChoice([(320, 960)])

        @tf.function(input_signature=[], autograph=False)
        def split(self):
            return self.product_choice.choice()[(320, 960)]

    module = Module()
    tf.saved_model.save(module, str(tmp_path), signatures={"split": module.split})
    assert tf.saved_model.load(str(tmp_path)).split().dtype == tf.bool
    # The TF1 loader (the steps of TF Serving's C++ loader) runs the initializer too.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.load(session, ["serve"], str(tmp_path))
        output = next(iter(meta.signature_def["split"].outputs.values())).name
        assert session.run(output) in (True, False)
    script = "print(bool(tf.saved_model.load(sys.argv[1]).split()))"
    assert run_with_tensorflow_alone(script, tmp_path, tmp_path).strip() in ("True", "False")
