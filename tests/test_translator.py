import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from seq2seq_app.core import metrics
from seq2seq_app.core.layers.attention_decoder import AttentionDecoder
from seq2seq_app.core.layers.cross_attention import CrossAttention
from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder
from seq2seq_app.translation.translator import Translator
from tests.layer_checks import check_config_round_trip, check_fit_and_save_load

CELLS = ["gru", "lstm", "simple_rnn"]


def batch(rng, batch=3, src=7, tgt=5, vocab=30):
    source = rng.integers(4, vocab, (batch, src)).astype("int32")
    source[0, 4:] = 0  # a padded row
    target = rng.integers(4, vocab, (batch, tgt)).astype("int32")
    return source, target


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_shapes_masks_and_config(cell, bidirectional):
    rng = np.random.default_rng(0)
    source, _ = batch(rng)
    encoder = RecurrentEncoder(30, 8, 6, cell=cell, num_layers=2, bidirectional=bidirectional)
    outputs, states = check_config_round_trip(encoder, source)
    width = 12 if bidirectional else 6
    assert tuple(outputs.shape) == (3, 7, width)
    assert len(states) == (2 if cell == "lstm" else 1)
    assert all(tuple(s.shape) == (3, width) for s in states)
    np.testing.assert_array_equal(np.asarray(outputs)[0, 4:], 0.0)  # padding outputs are zero


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_is_padding_invariant(cell):
    encoder = RecurrentEncoder(30, 8, 6, cell=cell, num_layers=2)
    short = np.array([[5, 6, 7]], "int32")
    padded = np.array([[5, 6, 7, 0, 0, 0]], "int32")
    (o1, s1), (o2, s2) = encoder(short), encoder(padded)
    np.testing.assert_allclose(np.asarray(o1), np.asarray(o2)[:, :3], atol=1e-5)
    for a, b in zip(s1, s2):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
def test_attention_weights_sum_to_one_over_unmasked_memory(score):
    attention = CrossAttention(8, score=score)
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    context, weights = check_config_round_trip(
        attention, np.ones((2, 3, 5), "float32"), np.random.rand(2, 4, 6).astype("float32"), mask
    )
    weights = np.asarray(weights)
    assert tuple(context.shape) == (2, 3, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(weights[0, :, 2:], 0.0)


def _keras_attention(attention, query, memory, mask):
    """Keras's own scoring layer on the projected query and keys: what `CrossAttention` computes."""
    return attention.attention(
        [attention.query_proj(query), memory, attention.project_keys(memory)],
        mask=[None, mask],
        return_attention_scores=True,
    )


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
@pytest.mark.parametrize("rows,length", [(1, 6), (3, 40), (2, 200)])  # both sides of FEW_POSITIONS
def test_one_query_step_matches_keras_attention(score, rows, length):
    rng = np.random.default_rng(1)
    attention = CrossAttention(8, score=score)
    memory = rng.normal(size=(rows, length, 6)).astype("float32")
    mask = np.ones((rows, length), bool)
    mask[0, length // 2 :] = False  # a padded row
    query = rng.normal(size=(rows, 5)).astype("float32")
    context, weights = attention.step(query, memory, mask)  # before any call: step builds it
    keras_context, keras_weights = _keras_attention(attention, query[:, None], memory, mask)
    np.testing.assert_allclose(np.asarray(weights), np.asarray(keras_weights)[:, 0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(context), np.asarray(keras_context)[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(weights)[0, length // 2 :], 0.0)


@pytest.mark.parametrize("score", ["additive", "multiplicative"])
def test_attention_over_a_sequence_matches_keras_layer_and_its_gradients(score):
    rng = np.random.default_rng(2)
    attention = CrossAttention(8, score=score)
    query = tf.constant(rng.normal(size=(2, 3, 5)), tf.float32)
    memory = tf.constant(rng.normal(size=(2, 4, 6)), tf.float32)
    mask = np.array([[True, True, False, False], [True] * 4])
    attention(query, memory, mask)  # builds every weight
    # Weighted sums of both outputs, so every gradient below is a different, non-trivial one.
    pick = [tf.constant(rng.normal(size=shape), tf.float32) for shape in [(2, 3, 6), (2, 3, 4)]]

    def loss(outputs):
        return sum(tf.reduce_sum(x * w) for x, w in zip(outputs, pick))

    sources = [query, memory, *attention.trainable_weights]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([query, memory])
        ours = attention(query, memory, mask)
        keras_form = _keras_attention(attention, query, memory, mask)
        ours_loss, keras_loss = loss(ours), loss(keras_form)
    for a, b in zip(ours, keras_form):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(tape.gradient(ours_loss, sources), tape.gradient(keras_loss, sources)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_additive_attention_over_a_sequence_matches_keras_layer_in_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # the `float32_policy` fixture resets it
    rng = np.random.default_rng(3)
    attention = CrossAttention(8, score="additive")
    query = rng.normal(size=(2, 3, 5)).astype("float32")
    memory = rng.normal(size=(2, 4, 6)).astype("float32")
    mask = np.array([[True, True, False, False], [True] * 4])
    ours = attention(query, memory, mask)
    keras_form = _keras_attention(attention, query, memory, mask)
    for a, b in zip(ours, keras_form):
        assert a.dtype == b.dtype == "bfloat16"
        np.testing.assert_allclose(np.asarray(a, "float32"), np.asarray(b, "float32"), atol=3e-2)
    np.testing.assert_array_equal(np.asarray(ours[1], "float32")[0, :, 2:], 0.0)


def test_unknown_choices_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown cell"):
        RecurrentEncoder(10, 4, 4, cell="transformer")
    with pytest.raises(ValueError, match="Unknown attention"):
        CrossAttention(4, score="dot-ish")


def test_decoder_config_round_trip():
    decoder = AttentionDecoder(20, 8, 6, cell="lstm", num_layers=2, attention="multiplicative")
    memory = np.random.rand(2, 4, 10).astype("float32")
    states = [[np.zeros((2, 6), "float32")] * 2] * 2
    logits, weights, new_states = check_config_round_trip(
        decoder, np.ones((2, 3), "int32"), memory, np.ones((2, 4), bool), states
    )
    assert tuple(logits.shape) == (2, 3, 20) and tuple(weights.shape) == (2, 3, 4)
    assert len(new_states) == 2 and all(len(s) == 2 for s in new_states)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_step_by_step_decoding_equals_full_sequence(cell, attention):
    rng = np.random.default_rng(1)
    source, target = batch(rng)
    model = Translator(30, 30, 8, 6, cell=cell, encoder_layers=2, decoder_layers=2, attention=attention)
    full_logits, full_attention = model({"source": source, "target_in": target}, return_attention=True)
    state = model.encode(source)
    embeddings, bias = model.output_layer
    table = ops.concatenate([ops.transpose(embeddings), bias[None]], 0)  # as the exports hold it
    for t in range(target.shape[1]):
        logits, weights, next_state = model.decode_step(target[:, t], state)
        np.testing.assert_allclose(np.asarray(logits), np.asarray(full_logits)[:, t], atol=1e-5)
        np.testing.assert_allclose(np.asarray(weights), np.asarray(full_attention)[:, t], atol=1e-5)
        from_table = model.decode_step(target[:, t], state, output_table=table)
        np.testing.assert_allclose(np.asarray(from_table[0]), np.asarray(logits), atol=1e-5)
        rows = ops.cast(embeddings, "float16")  # as a float16 export stores them
        from_rows = model.decode_step(target[:, t], state, output_table=table, embedding_rows=rows)
        np.testing.assert_allclose(np.asarray(from_rows[0]), np.asarray(logits), atol=1e-2)
        state = next_state


def test_translator_is_padding_invariant_on_both_sides():
    model = Translator(30, 30, 8, 6, cell="gru")
    a = model({"source": np.array([[5, 6, 3]], "int32"), "target_in": np.array([[2, 7]], "int32")})
    b = model({"source": np.array([[5, 6, 3, 0, 0]], "int32"), "target_in": np.array([[2, 7, 0]], "int32")})
    np.testing.assert_allclose(np.asarray(a), np.asarray(b)[:, :2], atol=1e-5)


def test_masked_cross_entropy_has_the_loss_and_gradients_of_keras_ignore_class():
    rng = np.random.default_rng(3)
    source, target = batch(rng)
    labels = np.roll(target, -1, axis=1)
    labels[0, 2:], labels[1, 4:] = 0, 0  # padded targets
    all_padding = np.zeros_like(labels)
    model = Translator(30, 30, 8, 6, cell="gru")
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    inputs = {"source": source, "target_in": target}
    for y in (labels, all_padding):
        results = []
        for loss in (keras_loss, metrics.masked_cross_entropy):
            model.compile(loss=loss)  # wrapped and reduced as training does
            with tf.GradientTape() as tape:
                value = model.compute_loss(x=inputs, y=y, y_pred=model(inputs))
            results.append((value, tape.gradient(value, model.trainable_weights)))
        (a, grads_a), (b, grads_b) = results
        np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
        for ga, gb in zip(grads_a, grads_b):
            np.testing.assert_allclose(
                tf.convert_to_tensor(ga), tf.convert_to_tensor(gb), rtol=1e-5, atol=1e-7
            )
    assert float(b) == 0.0  # nothing to learn from a batch of padding


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_masked_accuracy_is_the_argmax_accuracy_over_real_tokens(dtype):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, 6, 11)).astype("float32")
    labels = rng.integers(1, 11, (3, 6))
    labels[0, :3] = np.argmax(logits[0, :3], -1)  # right at least there
    labels[1, 4:], labels[2, :] = 0, 0  # padding, and a row of padding only
    labels[1, 0] = 0  # padding between real tokens counts as nothing too
    logits[0, 3, [2, 5]], labels[0, 3] = 9.0, 5  # a tie goes to the first, as argmax's
    real = labels != 0
    logits = tf.constant(logits, dtype)
    expected = np.mean((np.argmax(np.asarray(tf.cast(logits, "float32")), -1) == labels)[real])
    got = metrics.masked_accuracy(tf.constant(labels), logits)
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)
    assert float(metrics.masked_accuracy(tf.zeros([2, 3], tf.int32), logits[:2, :3])) == 0.0


@pytest.mark.slow  # a real fit and a save/load: seconds of CPU
def test_translator_fits_and_saves(tmp_path):
    rng = np.random.default_rng(2)
    source, target = batch(rng)
    model = Translator(30, 30, 8, 6, cell="lstm", attention="multiplicative")
    check_fit_and_save_load(
        model, {"source": source, "target_in": target}, target, tmp_path, metrics.masked_cross_entropy
    )
