"""The inference-time recurrence computes what Keras's GRU and LSTM layers compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core import recurrence
from seq2seq_app.core.layers.attention_decoder import AttentionDecoder
from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder
from seq2seq_app.core.layers.rnn import make_rnn

ATOL = 1e-5


def ragged_ids(rng, rows, width=7, vocab=40):
    """Token ids with lengths from 0 (an all-padding row) to `width`."""
    ids = rng.integers(1, vocab, (rows, width)).astype("int32")
    for row, length in enumerate(rng.integers(0, width + 1, rows)):
        ids[row, length:] = 0
    ids[0, :] = 0
    ids[-1, :] = rng.integers(1, vocab, width)
    return ids


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
# 300 units with 3 rows takes the split recurrent product, with 12 rows the whole one.
@pytest.mark.parametrize(("units", "rows"), [(6, 5), (300, 3), (300, 12)])
def test_encoder_inference_equals_keras_layers(cell, bidirectional, units, rows):
    ids = ragged_ids(np.random.default_rng(units + rows), rows)
    encoder = RecurrentEncoder(40, 8, units, cell=cell, num_layers=2, bidirectional=bidirectional)
    keras_outputs, keras_states = encoder(ids, training=True)  # no dropout: Keras's own layers
    assert all(recurrence.supports(rnn) for rnn in encoder.rnns)
    outputs, states = encoder(ids)
    np.testing.assert_allclose(np.asarray(outputs), np.asarray(keras_outputs), atol=ATOL)
    assert len(states) == len(keras_states)
    for ours, theirs in zip(states, keras_states):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL)
    np.testing.assert_array_equal(np.asarray(outputs)[0], 0.0)  # all padding: zero outputs


def test_encoder_inference_in_a_graph_with_unknown_shapes():
    encoder = RecurrentEncoder(40, 8, 6, cell="gru", bidirectional=True)
    ids = ragged_ids(np.random.default_rng(1), 4)
    expected, _ = encoder(ids, training=True)
    traced = tf.function(lambda x: encoder(x)[0], input_signature=[tf.TensorSpec([None, None], tf.int32)])
    np.testing.assert_allclose(traced(ids).numpy(), np.asarray(expected), atol=ATOL)
    padding_only = traced(tf.zeros([2, 3], tf.int32)).numpy()
    np.testing.assert_array_equal(padding_only, np.zeros((2, 3, 12)))
    assert tuple(traced(tf.zeros([2, 0], tf.int32)).shape) == (2, 0, 12)  # no columns at all


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("rows", [1, 12])
def test_one_step_equals_the_keras_cell(cell, rows):
    rng = np.random.default_rng(rows)
    layer = make_rnn(cell, 300, name="rnn")
    layer(rng.normal(size=(rows, 2, 5)).astype("float32"))  # builds the cell
    x = rng.normal(size=(rows, 5)).astype("float32")
    states = [rng.normal(size=(rows, 300)).astype("float32") for _ in range(2 if cell == "lstm" else 1)]
    expected, expected_states = layer.cell(x, states)
    out, new_states = recurrence.step(layer.cell, recurrence.project(layer.cell, x), states)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL)
    for ours, theirs in zip(new_states, expected_states):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL)


def test_decoder_step_equals_the_teacher_forced_sequence():
    rng = np.random.default_rng(2)
    decoder = AttentionDecoder(vocab_size=30, embedding_dim=8, units=300)
    memory = rng.normal(size=(2, 5, 12)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    tokens = rng.integers(1, 30, (2, 4)).astype("int32")
    states = [[np.zeros((2, 300), "float32")]]
    logits, _, _ = decoder(tokens, memory, mask, states)
    for t in range(4):
        step_logits, _, states = decoder(tokens[:, t : t + 1], memory, mask, states)
        np.testing.assert_allclose(np.asarray(step_logits)[:, 0], np.asarray(logits)[:, t], atol=1e-4)


def test_what_keras_must_compute_itself():
    unbuilt = make_rnn("gru", 4, name="rnn")
    assert not recurrence.supports(unbuilt)  # Keras builds it on its first call
    for layer in (
        make_rnn("peephole_lstm", 4, name="rnn"),
        make_rnn("simple_rnn", 4, name="rnn"),
        keras.layers.GRU(4, reset_after=False),
        keras.layers.GRU(4, activation="relu"),
        keras.layers.GRU(4, go_backwards=True),
        keras.layers.Bidirectional(keras.layers.LSTM(4, use_bias=False)),
    ):
        layer(np.zeros((1, 2, 3), "float32"))
        assert not recurrence.supports(layer), layer
    built = make_rnn("lstm", 4, name="rnn")
    built(np.zeros((1, 2, 3), "float32"))
    assert recurrence.supports(built) and recurrence.supports(built.cell)
