"""The recurrence computes what Keras's GRU and LSTM layers compute, values and gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core import recurrence
from seq2seq_app.core.layers.attention_decoder import AttentionDecoder
from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder
from seq2seq_app.core.layers.rnn import make_rnn

ATOL = 1e-5
# On a machine with a GPU the models keep Keras's layers (cuDNN) for inference too.
pytestmark = pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="Keras runs cuDNN")


def ragged_ids(rng, rows, width=7, vocab=40, gaps=True):
    """Token ids with lengths from 0 (an all-padding row) to `width`, and with `gaps` one row with
    padding before and between its tokens (Keras skips masked steps wherever they are; without
    gaps, padding only at the end, the recurrence packs the rows)."""
    ids = rng.integers(1, vocab, (rows, width)).astype("int32")
    for row, length in enumerate(rng.integers(0, width + 1, rows)):
        ids[row, length:] = 0
    ids[0, :] = 0
    if gaps:
        ids[1, :] = rng.integers(1, vocab, width)
        ids[1, [0, 2]] = 0
    ids[-1, :] = rng.integers(1, vocab, width)
    return ids


@pytest.fixture
def keras_layers(monkeypatch):
    """Runs a function with `recurrence` turned off, so Keras's own layers compute."""

    def run(fn, *args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setattr(recurrence, "supports", lambda layer_or_cell: False)
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def calls(monkeypatch):
    """Counts the calls of `recurrence.run` and `recurrence.step`, so a test knows its path ran."""
    counts = {"run": 0, "step": 0}
    for name in counts:
        original = getattr(recurrence, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(recurrence, name, counted)
    return counts


@pytest.fixture
def packed_runs(monkeypatch):
    """Counts the packed loops run (not merely traced: a traced `tf.cond` builds both branches)."""
    runs = tf.Variable(0)
    original = recurrence._packed_loop

    def counted(*args, **kwargs):
        with tf.control_dependencies([runs.assign_add(1)]):
            return original(*args, **kwargs)

    monkeypatch.setattr(recurrence, "_packed_loop", counted)
    return runs


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
# 300 units with 3 rows takes the split recurrent product, with 12 rows the whole one.
@pytest.mark.parametrize(("units", "rows"), [(6, 5), (300, 3), (300, 12)])
def test_encoder_equals_keras_layers(cell, bidirectional, units, rows, calls, keras_layers):
    ids = ragged_ids(np.random.default_rng(units + rows), rows)
    encoder = RecurrentEncoder(40, 8, units, cell=cell, num_layers=2, bidirectional=bidirectional)
    keras_outputs, keras_states = keras_layers(encoder, ids)
    assert calls["run"] == 0
    outputs, states = encoder(ids)
    assert calls["run"] == 2  # each layer
    np.testing.assert_allclose(np.asarray(outputs), np.asarray(keras_outputs), atol=ATOL)
    assert len(states) == len(keras_states)
    for ours, theirs in zip(states, keras_states):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL)
    np.testing.assert_array_equal(np.asarray(outputs)[0], 0.0)  # all padding: zero outputs


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_encoder_in_a_graph_with_unknown_shapes(cell, keras_layers):
    encoder = RecurrentEncoder(40, 8, 300, cell=cell, bidirectional=True)
    traced = tf.function(lambda x: encoder(x)[0], input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for rows in (3, 12):  # both branches of the split product, in one graph
        ids = ragged_ids(np.random.default_rng(rows), rows)
        expected, _ = keras_layers(encoder, ids)
        np.testing.assert_allclose(traced(ids).numpy(), np.asarray(expected), atol=ATOL)
    padding_only = traced(tf.zeros([2, 3], tf.int32)).numpy()
    np.testing.assert_array_equal(padding_only, np.zeros((2, 3, 600)))
    assert tuple(traced(tf.zeros([2, 0], tf.int32)).shape) == (2, 0, 600)  # no columns at all


@pytest.mark.parametrize("gaps", [True, False])
def test_encoder_in_bfloat16(gaps, keras_layers, packed_runs):
    ids = ragged_ids(np.random.default_rng(3), 4, gaps=gaps)
    encoder = RecurrentEncoder(40, 8, 300, cell="gru", dtype="mixed_bfloat16")
    expected, _ = keras_layers(encoder, ids)
    outputs, _ = encoder(ids)
    assert int(packed_runs.numpy()) == (0 if gaps else 2)  # both directions
    assert outputs.dtype == expected.dtype
    np.testing.assert_allclose(np.asarray(outputs, "float32"), np.asarray(expected, "float32"), atol=2e-2)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_rows_of_mixed_lengths_are_packed(cell, bidirectional, packed_runs):
    """Padding only at the end, lengths that differ: rows are sorted longest first and each step
    computes only the rows still reading (`_packed_loop`). Outputs at read positions and final
    states are still Keras's, from given initial states, eagerly and traced with a known or an
    unknown number of rows; outputs are zero at padding."""
    rng = np.random.default_rng(11)
    # 10 rows take the whole recurrent product at first, the split one when few still read.
    lengths = np.array([3, 0, 7, 1, 7, 5, 2, 3, 6, 4])
    x = rng.normal(size=(10, 8, 5)).astype("float32")
    mask = np.arange(8)[None, :] < lengths[:, None]
    layer = make_rnn(cell, 300, name="rnn")
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, merge_mode="concat")
    count = (2 if cell == "lstm" else 1) * (2 if bidirectional else 1)
    states = [rng.normal(size=(10, 300)).astype("float32") for _ in range(count)]
    expected, *expected_states = layer(x, mask=mask, initial_state=states)
    assert recurrence.supports(layer)

    def ours(x, mask, *states):
        outputs, final = recurrence.run(layer, x, mask, list(states))
        return (outputs, *final)

    unknown = [tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None], tf.bool)]
    known = [tf.TensorSpec([10, 8, 5]), tf.TensorSpec([10, 8], tf.bool)]
    for fn in (
        ours,
        *(
            tf.function(ours, input_signature=s + [tf.TensorSpec([None, 300])] * count)
            for s in (unknown, known)
        ),
    ):
        packed_runs.assign(0)
        outputs, *final = fn(x, mask, *states)
        assert int(packed_runs.numpy()) == (2 if bidirectional else 1)
        outputs = np.asarray(outputs)
        np.testing.assert_allclose(outputs[mask], np.asarray(expected)[mask], atol=ATOL)
        np.testing.assert_array_equal(outputs[~mask], 0.0)
        for a, b in zip(final, expected_states):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=ATOL)


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


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_decoder_step_equals_the_teacher_forced_sequence(cell, calls):
    rng = np.random.default_rng(2)
    decoder = AttentionDecoder(vocab_size=30, embedding_dim=8, units=300, cell=cell)
    memory = rng.normal(size=(2, 5, 12)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    tokens = rng.integers(1, 30, (2, 4)).astype("int32")
    states = [[np.zeros((2, 300), "float32")] * (2 if cell == "lstm" else 1)]
    logits, _, _ = decoder(tokens, memory, mask, states)
    before = calls["step"]
    for t in range(4):
        step_logits, _, states = decoder(tokens[:, t : t + 1], memory, mask, states)
        np.testing.assert_allclose(np.asarray(step_logits)[:, 0], np.asarray(logits)[:, t], atol=1e-4)
    assert calls["step"] == before + 4


def _gradients(fn, variables):
    with tf.GradientTape() as tape:
        loss = fn()
    return [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_encoder_gradients_equal_keras_layers(cell, calls, keras_layers):
    ids = ragged_ids(np.random.default_rng(5), 6)
    encoder = RecurrentEncoder(40, 8, 300, cell=cell, bidirectional=True)
    encoder(ids)
    weights = tf.constant(np.random.default_rng(6).normal(size=(6, 7, 600)), tf.float32)

    def loss():
        outputs, states = encoder(ids, training=True)
        return tf.reduce_sum(outputs * weights) + tf.reduce_sum(tf.square(states[0]))

    expected = keras_layers(_gradients, loss, encoder.trainable_variables)
    runs = calls["run"]
    ours = _gradients(loss, encoder.trainable_variables)
    assert calls["run"] > runs  # training took the recurrence too
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


# Inputs read from an array (training), sliced, or packed (not training, padding only at the end).
# Each traces two gradients of a 300-unit encoder (seconds): the paths outside training, whose
# gradients no `fit` takes, run in the full suite, not in the quick `not slow` loop.
OUTSIDE_TRAINING = pytest.mark.slow


@pytest.mark.parametrize(
    ("training", "gaps"),
    [
        (True, True),
        pytest.param(False, True, marks=OUTSIDE_TRAINING),
        pytest.param(False, False, marks=OUTSIDE_TRAINING),
    ],
)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_traced_encoder_gradients_equal_keras_layers(cell, training, gaps, keras_layers, packed_runs):
    """As `fit` runs it: a traced graph (TensorFlow's loop gradients, not a Python loop), unknown
    shapes, and a last column of padding only, so the loop stops before the inputs' end."""
    ids = ragged_ids(np.random.default_rng(8), 6, gaps=gaps)[:, :6]
    ids = np.concatenate([ids, np.zeros((6, 2), "int32")], axis=1)
    encoder = RecurrentEncoder(40, 8, 300, cell=cell, bidirectional=True)
    encoder(ids)
    weights = tf.constant(np.random.default_rng(9).normal(size=(6, 8, 600)), tf.float32)

    def gradients(x):
        with tf.GradientTape() as tape:
            outputs, states = encoder(x, training=training)
            loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(tf.square(states[0]))
        return [tf.convert_to_tensor(g) for g in tape.gradient(loss, encoder.trainable_variables)]

    signature = [tf.TensorSpec([None, None], tf.int32)]
    expected = keras_layers(lambda: tf.function(gradients, input_signature=signature)(ids))
    packed_runs.assign(0)  # not counting the call that built the encoder
    ours = tf.function(gradients, input_signature=signature)(ids)
    assert int(packed_runs.numpy()) == (0 if training or gaps else 2)  # both directions
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_decoder_sequence_with_initial_states_equals_keras_layers(cell, calls, keras_layers):
    rng = np.random.default_rng(4)
    decoder = AttentionDecoder(vocab_size=30, embedding_dim=8, units=20, cell=cell)
    memory = rng.normal(size=(3, 5, 12)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False], [True] * 5])
    tokens = rng.integers(1, 30, (3, 6)).astype("int32")
    states = [[tf.constant(rng.normal(size=(3, 20)), tf.float32) for _ in range(2 if cell == "lstm" else 1)]]

    def loss():
        logits, _, new_states = decoder(tokens, memory, mask, states, training=True)
        return tf.reduce_sum(logits[..., :3]) + tf.reduce_sum(new_states[0][-1])

    variables = decoder.trainable_variables
    keras_loss = keras_layers(loss)
    expected = keras_layers(_gradients, loss, variables)
    assert calls["run"] == 0
    np.testing.assert_allclose(loss().numpy(), keras_loss.numpy(), rtol=1e-5)
    for a, b in zip(_gradients(loss, variables), expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    assert calls["run"] == 2


class _OwnGRUCell(keras.layers.GRUCell):
    def call(self, inputs, states, training=False):
        return super().call(2 * inputs, states, training)


def test_what_keras_must_compute_itself():
    unbuilt = make_rnn("gru", 4, name="rnn")
    assert not recurrence.supports(unbuilt)  # Keras builds it on its first call
    sequences = {"return_sequences": True, "return_state": True}
    for layer in (
        make_rnn("peephole_lstm", 4, name="rnn"),
        make_rnn("simple_rnn", 4, name="rnn"),
        keras.layers.GRU(4, reset_after=False, **sequences),
        keras.layers.GRU(4, activation="relu", **sequences),
        keras.layers.GRU(4, go_backwards=True, **sequences),
        keras.layers.GRU(4, return_sequences=True),
        keras.layers.GRU(4, stateful=True, **sequences),
        keras.layers.RNN(_OwnGRUCell(4), **sequences),
        keras.layers.Bidirectional(keras.layers.LSTM(4, use_bias=False, **sequences)),
        keras.layers.Bidirectional(keras.layers.GRU(4, **sequences), merge_mode="sum"),
        keras.layers.GRU(4, dropout=0.1, **sequences),
        keras.layers.LSTM(4, recurrent_dropout=0.1, **sequences),
    ):
        layer(np.zeros((1, 2, 3), "float32"))
        assert not recurrence.supports(layer), layer
    built = make_rnn("lstm", 4, name="rnn")
    built(np.zeros((1, 2, 3), "float32"))
    assert recurrence.supports(built) and recurrence.supports(built.cell)
