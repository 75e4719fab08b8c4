"""The hand-written cells (peephole and coupled-gate LSTMs) behave like the built-in ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.core.layers.coupled_lstm_cell import CoupledLSTMCell
from seq2seq_app.core.layers.peephole_lstm_cell import PeepholeLSTMCell
from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder
from seq2seq_app.core.layers.rnn import CELLS, make_rnn, num_states
from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier
from seq2seq_app.translation.translator import Translator
from tests.layer_checks import check_config_round_trip, check_fit_and_save_load
from tests.plain_tf import run_with_tensorflow_alone
from training import caption, sentiment, translate

NEW = ["peephole_lstm", "coupled_lstm"]
CLASSES = {"peephole_lstm": PeepholeLSTMCell, "coupled_lstm": CoupledLSTMCell}


def sequences(rng, batch=3, length=6, features=4):
    return rng.normal(size=(batch, length, features)).astype("float32")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_step(cell, x, h, c):
    """The papers' equations in numpy, from the cell's own weights."""
    kernel, recurrent, bias = (np.asarray(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    z = np.split(x @ kernel + h @ recurrent + bias, cell.gates, axis=-1)
    if isinstance(cell, PeepholeLSTMCell):
        p = np.asarray(cell.peepholes)
        zi, zg, zo, zf = z
        i, f = sigmoid(zi + p[0] * c), sigmoid(zf + p[1] * c)
        c = f * c + i * np.tanh(zg)
        o = sigmoid(zo + p[2] * c)
    else:
        zg, zo, zf = z
        f = sigmoid(zf)
        c = f * c + (1 - f) * np.tanh(zg)  # input gate = 1 - forget gate
        o = sigmoid(zo)
    return o * np.tanh(c), c


@pytest.mark.parametrize("cell", NEW)
def test_registry_knows_the_new_cells(cell):
    assert cell in CELLS and num_states(cell) == 2 and not CELLS[cell].cudnn
    layer = make_rnn(cell, 5, name="rnn")
    assert type(layer.cell) is CLASSES[cell]
    outputs, h, c = layer(sequences(np.random.default_rng(0)))
    assert tuple(outputs.shape) == (3, 6, 5) and tuple(h.shape) == tuple(c.shape) == (3, 5)
    np.testing.assert_allclose(np.asarray(outputs)[:, -1], np.asarray(h), atol=1e-6)


def test_cli_and_errors_name_every_registered_cell():
    for cli in (translate, caption, sentiment):
        for cell in CELLS:
            assert cli.build_parser().parse_args(["--cell", cell]).cell == cell
    with pytest.raises(ValueError, match="peephole_lstm"):
        make_rnn("lstmm", 4, name="rnn")
    with pytest.raises(ValueError, match="units"):
        PeepholeLSTMCell(0)


@pytest.mark.parametrize("cell", NEW)
def test_layer_config_round_trip(cell):
    layer = make_rnn(cell, 5, name="rnn")
    check_config_round_trip(layer, sequences(np.random.default_rng(1)))
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone.cell) is type(layer.cell) and clone.cell.units == 5


@pytest.mark.parametrize("cell", NEW)
def test_cells_match_the_equations_and_step_by_step_equals_whole_sequence(cell):
    rng = np.random.default_rng(2)
    x = sequences(rng)
    layer = make_rnn(cell, 5, name="rnn")
    outputs, h_last, c_last = (np.asarray(t) for t in layer(x))
    if cell == "peephole_lstm":  # non-zero peepholes, so they are exercised
        layer.cell.peepholes.assign(rng.normal(size=(3, 5)).astype("float32"))
        outputs, h_last, c_last = (np.asarray(t) for t in layer(x))
    h = c = np.zeros((3, 5), "float32")
    state = [h, c]
    for t in range(x.shape[1]):
        h, c = reference_step(layer.cell, x[:, t], h, c)
        out, state = layer.cell(x[:, t], state)
        np.testing.assert_allclose(np.asarray(out), h, atol=1e-5)
        np.testing.assert_allclose(outputs[:, t], h, atol=1e-5)
    np.testing.assert_allclose(h_last, h, atol=1e-5)
    np.testing.assert_allclose(c_last, c, atol=1e-5)


def test_peephole_cell_without_peepholes_is_keras_lstm():
    rng = np.random.default_rng(3)
    x = sequences(rng)
    ours, theirs = make_rnn("peephole_lstm", 5, name="a"), make_rnn("lstm", 5, name="b")
    ours(x), theirs(x)
    # Keras orders the gate blocks i, f, g, o; ours are i, g, o, f.
    order = [0, 3, 1, 2]
    reorder = lambda w: np.concatenate([np.split(np.asarray(w), 4, axis=-1)[k] for k in order], -1)  # noqa: E731
    theirs.cell.kernel.assign(reorder(ours.cell.kernel))
    theirs.cell.recurrent_kernel.assign(reorder(ours.cell.recurrent_kernel))
    theirs.cell.bias.assign(reorder(ours.cell.bias))
    for a, b in zip(ours(x), theirs(x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_coupled_cell_state_stays_a_convex_mix():
    layer = make_rnn("coupled_lstm", 4, name="rnn")
    _, _, c = layer(100 * sequences(np.random.default_rng(4), length=30))
    assert np.all(np.abs(np.asarray(c)) <= 1.0 + 1e-6)


@pytest.mark.parametrize("cell", NEW)
def test_padding_is_masked_like_the_built_in_layers(cell):
    encoder = RecurrentEncoder(30, 8, 6, cell=cell, num_layers=2, bidirectional=True)
    short = np.array([[5, 6, 7]], "int32")
    padded = np.array([[5, 6, 7, 0, 0, 0]], "int32")
    (o1, s1), (o2, s2) = encoder(short), encoder(padded)
    np.testing.assert_allclose(np.asarray(o1), np.asarray(o2)[:, :3], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(o2)[:, 3:], 0.0)
    assert len(s1) == 2
    for a, b in zip(s1, s2):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    check_config_round_trip(encoder, padded)


@pytest.mark.parametrize("cell", NEW)
def test_work_as_encoder_and_one_step_decoder(cell):
    rng = np.random.default_rng(5)
    source = rng.integers(4, 30, (2, 7)).astype("int32")
    source[0, 4:] = 0
    target = rng.integers(4, 30, (2, 5)).astype("int32")
    model = Translator(30, 30, 8, 6, cell=cell, encoder_layers=2, decoder_layers=2)
    full_logits = np.asarray(model({"source": source, "target_in": target}))
    state = model.encode(source)
    for t in range(target.shape[1]):
        logits, _, state = model.decode_step(target[:, t], state)
        np.testing.assert_allclose(np.asarray(logits), full_logits[:, t], atol=1e-5)


@pytest.mark.slow  # a real fit and a .keras save/load
@pytest.mark.parametrize("cell", NEW)
def test_classifier_with_new_cell_fits_and_saves(cell, tmp_path):
    rng = np.random.default_rng(6)
    tokens = rng.integers(1, 20, (8, 9)).astype("int32")
    model = SentimentClassifier(20, 0, 8, 6, cell=cell)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    check_fit_and_save_load(
        model, {"tokens": tokens}, rng.integers(0, 2, 8).astype("float32"), tmp_path, loss
    )


class _Runner(tf.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer_variables = [v.value for v in layer.weights]
        self._layer = layer

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None], tf.bool)]
    )
    def run(self, x, mask):
        return self._layer(x, mask=mask)[0]


@pytest.mark.slow  # spawns a fresh interpreter (one for both cells: each start imports TensorFlow)
def test_exported_cells_run_with_tensorflow_alone(tmp_path):
    rng = np.random.default_rng(7)
    x = sequences(rng)
    mask = np.ones((3, 6), bool)
    mask[0, 3:] = False
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "mask.npy", mask)
    expected = []
    for cell in NEW:
        runner = _Runner(make_rnn(cell, 5, name="rnn"))
        expected.append(np.asarray(runner.run(x, mask)))
        tf.saved_model.save(runner, str(tmp_path / cell))
    script = (
        "import numpy as np\n"
        "for path in sys.argv[1:]:\n"
        "    m = tf.saved_model.load(path)\n"
        "    print(m.run(np.load('x.npy'), np.load('mask.npy')).numpy().tolist())\n"
    )
    printed = run_with_tensorflow_alone(script, [tmp_path / cell for cell in NEW], tmp_path).splitlines()
    assert len(printed) == len(NEW)
    for line, want in zip(printed, expected):
        np.testing.assert_allclose(np.array(eval(line)), want, atol=1e-5)  # noqa: S307
