"""The RNN lab's experiments: schemas, shapes and what theory says they must show."""

import json

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.lab.cells import LAB_CELLS, lab_rnn, parse_cells
from seq2seq_app.lab.cost import cost_experiment
from seq2seq_app.lab.gradients import gradients_experiment, hidden_gradient_norms
from seq2seq_app.lab.inside import gru_steps, sentiment_inside, translator_inside
from seq2seq_app.lab.memory import memory_experiment
from seq2seq_app.lab.recall_model import build_recall_model, fit_recall
from seq2seq_app.lab.tasks import delayed_recall
from training import lab

UNITS = 8


@pytest.fixture(scope="module")
def gradients():
    return gradients_experiment(
        ("simple_rnn", "simple_rnn_relu", "lstm"), length=40, units=UNITS, train_steps=5, batch=8
    )


def test_delayed_recall_targets_are_the_symbols_lag_steps_back():
    x, y = delayed_recall(np.random.default_rng(0), 16, 9, [0, 3, 8], symbols=5)
    ids = x.argmax(-1)
    assert x.shape == (16, 9, 5) and np.all(x.sum(-1) == 1)
    np.testing.assert_array_equal(y, ids[:, [8, 5, 0]])
    with pytest.raises(ValueError, match="lags"):
        delayed_recall(np.random.default_rng(0), 2, 5, [5])


def test_cell_names_are_checked():
    assert parse_cells(None) == LAB_CELLS and parse_cells("gru,gru, lstm") == ("gru", "lstm")
    with pytest.raises(ValueError, match="Unknown cell.*bogus"):
        parse_cells("lstm,bogus")
    with pytest.raises(ValueError, match="Unknown cell"):
        lab_rnn("bogus", 4)


@pytest.mark.slow  # trains small models: seconds of CPU
def test_gradients_schema(gradients):
    assert gradients["length"] == 40 and set(gradients["cells"]) == {"simple_rnn", "simple_rnn_relu", "lstm"}
    for values in gradients["cells"].values():
        assert set(values) == {"init", "trained"}
        for norms in values.values():
            assert len(norms) == 40 and all(v is None or v >= 0 for v in norms)
    assert set(gradients["forward"]) == {"tanh", "relu"}
    json.dumps(gradients)  # JSON-ready as it is


@pytest.mark.slow  # trains small models: seconds of CPU
def test_tanh_gradient_vanishes_with_distance_at_init(gradients):
    # Each step back multiplies by U^T diag(1 - h²): with an orthogonal U (norm 1) and inputs that
    # keep h away from 0, every factor shrinks the gradient, so it decays exponentially.
    norms = gradients["cells"]["simple_rnn"]["init"]
    assert norms[0] < 0.1 * norms[-1]


@pytest.mark.slow  # trains small models: seconds of CPU
def test_relu_forward_state_grows_and_tanh_stays_bounded(gradients):
    tanh, relu = (np.array(gradients["forward"][k], dtype=float) for k in ("tanh", "relu"))
    assert np.all(tanh <= np.sqrt(UNITS))  # |tanh| < 1 in each of the units
    assert relu[-1] > 3 * relu[0] and relu[-1] > np.sqrt(UNITS)


@pytest.mark.slow  # trains two models for a few hundred steps
def test_after_training_tanh_gradients_obey_the_jacobian_bound():
    """Prediction: for the tanh SimpleRNN, h_t = tanh(W x_t + U h_{t-1} + b), so
    ∂L/∂h_{t-1} = U^T diag(1 - h_t²) ∂L/∂h_t and, as 0 < 1 - h² ≤ 1,
    ‖∂L/∂h_t‖ ≤ ‖U‖₂^(T-1-t) ‖∂L/∂h_{T-1}‖ after any training. An LSTM's gradient also flows through
    the cell state, scaled by the forget gates and not by U, so no bound in ‖U‖ holds for it; the
    check there is only that its gradient reaches the first step finite and non-zero."""
    length, rng = 30, np.random.default_rng(0)
    x, y = delayed_recall(np.random.default_rng(1), 16, length, [length - 1])
    for cell in ("simple_rnn", "lstm"):
        model = build_recall_model(cell, UNITS, length, outputs=1)
        fit_recall(model, rng, [length - 1], steps=200, batch=16)
        norms = np.array(hidden_gradient_norms(model, x, y))
        recurrent = np.asarray(model.get_layer("rnn").cell.recurrent_kernel)
        if cell == "simple_rnn":
            bound = np.linalg.norm(recurrent, 2) ** np.arange(length - 1, -1, -1) * norms[-1]
            assert np.all(norms <= bound * (1 + 1e-4) + 1e-12)
        assert np.all(np.isfinite(norms)) and norms[0] > 0


def test_hidden_gradient_norms_match_a_step_by_step_tape():
    import tensorflow as tf

    length = 6
    model = build_recall_model("gru", 4, length, outputs=1)
    x, y = delayed_recall(np.random.default_rng(2), 3, length, [length - 1])
    cell, head = model.get_layer("rnn").cell, model.get_layer("head")
    with tf.GradientTape() as tape:
        h, hs = tf.zeros((3, 4)), []
        for t in range(length):
            tape.watch(h)
            hs.append(h := cell(x[:, t], [h])[0])
        logits = head(h)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y[:, 0], logits))
    expected = [float(np.linalg.norm(g, axis=-1).mean()) for g in tape.gradient(loss, hs)]
    np.testing.assert_allclose(hidden_gradient_norms(model, x, y), expected, rtol=1e-4, atol=1e-7)


@pytest.mark.slow  # trains small models: seconds of CPU
def test_memory_schema():
    result = memory_experiment(("gru", "coupled_lstm"), lags=(3, 1), units=4, train_steps=3)
    for values in result["cells"].values():
        assert values["lag"] == [1, 3] and len(values["accuracy"]) == 2
        assert all(0 <= a <= 1 for a in values["accuracy"])
    assert result["chance"] == 0.25
    with pytest.raises(ValueError, match="lags"):
        memory_experiment(("gru",), lags=(-1,))


@pytest.mark.slow  # compiles three layers twice
def test_cost_reports_every_cell_next_to_lstm():
    result = cost_experiment(("gru", "peephole_lstm"), length=3, units=4, batch=2, repeats=1)
    assert set(result["cells"]) == {"gru", "peephole_lstm"}
    assert all(v["forward_ms"] > 0 and v["train_ratio_to_lstm"] > 0 for v in result["cells"].values())


@pytest.mark.slow  # trains small models: seconds of CPU
@pytest.mark.parametrize(
    "experiment, extra, cells",
    [
        ("gradients", [], "lstm,simple_rnn_relu"),
        ("memory", [], "gru"),
        ("cost", ["--units", "4"], "lstm"),
    ],
)
def test_cli_writes_the_documented_json(experiment, extra, cells, tmp_path, capsys):
    out = tmp_path / "out.json"
    flags = ["--cells", cells, "--length", "4", "--seed", "3", "--json", str(out)]
    if experiment != "cost":
        flags += ["--units", "4", "--train-steps", "2"]
    lab.main([experiment, *flags, *extra])
    result = json.loads(out.read_text())
    assert list(result["cells"]) == cells.split(",")
    if experiment == "gradients":
        assert result["length"] == 4
        assert all(set(v) == {"init", "trained"} and len(v["init"]) == 4 for v in result["cells"].values())
    if experiment == "memory":
        assert result["cells"]["gru"]["lag"] == [1, 3]
    assert cells.split(",")[0] in capsys.readouterr().out


def test_cli_runs_depth_with_its_flags(tmp_path, monkeypatch, capsys):
    """The experiment itself is tested through the lab tab (`test_depth_compares_four_stacks_on_one_budget`)
    and its doctest; here, what the CLI hands it and writes."""
    from seq2seq_app.lab import depth

    seen = {}

    def recorded(cell, lags, **kwargs):
        seen.update(cell=cell, lags=lags, **kwargs)
        config = {
            "layers": 1,
            "bidirectional": False,
            "parameters": 9,
            "lag": list(lags),
            "accuracy": [0.5, 0.25],
        }
        return {"configs": [{**config, "train_seconds": 0.1}], "chance": 0.25, "settings": {}}

    monkeypatch.setattr(depth, "depth_experiment", recorded)
    out = tmp_path / "out.json"
    flags = ["--cells", "gru", "--length", "4", "--seed", "3", "--units", "4", "--train-steps", "2"]
    lab.main(["depth", *flags, "--json", str(out)])
    assert seen == {"cell": "gru", "lags": (1, 3), "seed": 3, "units": 4, "train_steps": 2}
    assert json.loads(out.read_text())["configs"][0]["lag"] == [1, 3]
    assert "1 layer(s), uni: L=1: 0.50  L=3: 0.25" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        lab.main(["depth", "--cells", "gru,lstm"])
    assert "one name in --cells" in capsys.readouterr().err


def test_cli_inside_writes_the_recomputation(sentiment_export, tmp_path):
    out = tmp_path / "inside.json"
    lab.main(["inside", "--model-dir", str(sentiment_export[0]), "--text", "영화 최고", "--json", str(out)])
    assert json.loads(out.read_text())["match"] is True


def test_cli_rejects_unknown_cells(capsys):
    with pytest.raises(SystemExit):
        lab.main(["memory", "--cells", "transformer"])
    assert "Unknown cell" in capsys.readouterr().err


def test_gru_steps_reproduce_keras_gru():
    import keras

    x = np.random.default_rng(4).normal(size=(1, 7, 3)).astype("float32")
    layer = keras.layers.GRU(5, return_sequences=True)
    layer(x)
    kernel, recurrent, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    bias = bias + np.random.default_rng(5).normal(size=bias.shape)  # non-zero biases exercise reset_after
    layer.set_weights([kernel, recurrent, bias])
    expected = np.asarray(layer(x))[0]
    np.testing.assert_allclose(
        gru_steps(x[0].astype(np.float64), kernel, recurrent, bias)["hidden"], expected, atol=1e-5
    )


def test_sentiment_inside_reproduces_the_exported_score(sentiment_export):
    result = sentiment_inside(sentiment_export[0], "영화 배우 연기 최고")
    assert result["match"], (result["score"], result["model_score"])
    n = len(result["tokens"])
    assert result["tokens"][-2:] == ["최", "고"] and len(result["token_scores"]) == n
    assert 1 <= len(result["units"]) <= 16
    for key in ("update", "reset", "hidden"):
        rows = np.array(result[key])
        assert rows.shape == (len(result["units"]), n)
        assert np.all(np.abs(rows) <= 1) and (key == "hidden" or np.all(rows >= 0))
    with pytest.raises(ValueError, match="nothing to read"):
        sentiment_inside(sentiment_export[0], "   ")


def test_inside_refuses_other_folders(tmp_path):
    with pytest.raises(ValueError, match="No model card"):
        sentiment_inside(tmp_path, "좋다")
    (tmp_path / "model_card.json").write_text('{"task": "caption"}')
    with pytest.raises(ValueError, match="caption model"):
        translator_inside(tmp_path, "hola")


@pytest.mark.slow  # exports a SavedModel
def test_translator_inside_matches_the_encoder(tmp_path):
    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.translation.translator import Translator
    from seq2seq_app.translation.translator_export import TranslatorExport

    source, target = Vocabulary(["el", "gato", "come", "."]), Vocabulary(["the", "cat", "eats"])
    model = Translator(len(source), len(target), 8, 6, cell="gru")
    ids = np.array([[4, 1, 6, 7, 3]], "int32")  # el [UNK] come . [END]
    model({"source": ids, "target_in": np.ones((1, 2), "int32")})
    TranslatorExport(model, source, target).save(tmp_path)
    card = {"task": "translate", "hyperparameters": {"cell": "gru", "encoder_layers": 1}}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    result = translator_inside(tmp_path, "El perro come.")
    assert result["tokens"] == ["El", "perro", "come", ".", "⟨end⟩"]
    memory = np.asarray(model.encoder(ids)[0])[0]
    units = result["units"]
    np.testing.assert_allclose(np.array(result["forward"]).T, memory[:, units], atol=1e-4)
    np.testing.assert_allclose(np.array(result["backward"]).T, memory[:, [6 + u for u in units]], atol=1e-4)
    np.testing.assert_allclose(result["forward_norm"], np.linalg.norm(memory[:, :6], axis=1), atol=1e-3)


@pytest.mark.slow  # exports a SavedModel
def test_translator_inside_reads_a_subword_model_piece_by_piece(tmp_path):
    from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
    from seq2seq_app.translation.translator import Translator
    from seq2seq_app.translation.translator_export import TranslatorExport

    source = SubwordVocabulary.learn([["el", "gato", "come", "gatos", "."]] * 3, vocab_size=24)
    target = SubwordVocabulary.learn([["the", "cat", "eats"]] * 3, vocab_size=16)
    model = Translator(len(source), len(target), 8, 6, cell="gru")
    model({"source": np.ones((1, 3), "int32"), "target_in": np.ones((1, 2), "int32")})
    TranslatorExport(model, source, target).save(tmp_path)
    card = {"task": "translate", "hyperparameters": {"cell": "gru", "encoder_layers": 1}}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    result = translator_inside(tmp_path, "El gatito come. Otra frase.")  # only the first sentence
    ids, pieces, _ = source.segment(tf.ragged.constant([["el", "gatito", "come", "."]]))
    assert result["tokens"] == [p.decode() for p in pieces[0].numpy()] + ["⟨end⟩"]
    assert any(t.startswith("##") for t in result["tokens"])  # "gatito" is spelled in pieces
    memory = np.asarray(model.encoder(np.append(ids[0].numpy(), 3)[None].astype("int32"))[0])[0]
    np.testing.assert_allclose(np.array(result["forward"]).T, memory[:, result["units"]], atol=1e-4)


class _Folder:
    def __init__(self, path):
        self.path = path


def test_lab_handlers_refuse_bad_input_with_messages():
    from ui.handlers import InputError
    from ui.lab_tab import lab_depth, lab_gradients, lab_inside, lab_memory

    with pytest.raises(InputError, match="Unknown cell"):
        lab_gradients("lstm,nope", 10)
    with pytest.raises(InputError, match="length between 2"):
        lab_gradients("lstm", 1000)
    with pytest.raises(InputError, match="length between 1"):
        lab_memory("gru", 0)
    with pytest.raises(InputError, match="Type a text"):
        lab_inside({}, "  ", "sentiment_nsmc")
    with pytest.raises(InputError, match="not installed"):
        lab_inside({"sentiment_nsmc": None}, "좋다", "sentiment_nsmc")
    with pytest.raises(InputError, match="Choose one of"):
        lab_inside({}, "좋다", "caption")
    with pytest.raises(InputError, match="Choose one of"):
        lab_depth("simple_rnn_relu", 5)


def test_lab_heatmap_escapes_tokens():
    from ui.lab_tab import heatmap

    page = heatmap(["<script>", "ok"], ["unit 3"], [[0.5, float("nan")]], 0.0)
    assert "<script>" not in page and "&lt;script&gt;" in page and page.count("<td") == 2


def test_lab_inside_handler_draws_one_map_per_gate(sentiment_export):
    from ui.lab_tab import lab_inside

    summary, maps = lab_inside(
        {"sentiment_nsmc": _Folder(sentiment_export[0])}, "영화 최고", "sentiment_nsmc"
    )
    assert "matches" in summary and maps.count('class="lab-heatmap"') == 3


@pytest.mark.slow  # trains small models
def test_lab_gradient_and_memory_handlers_return_plot_tables():
    from ui.lab_tab import lab_gradients, lab_memory

    grads, forward, result = lab_gradients("lstm,simple_rnn", 5, 1)
    assert len(grads) == 2 * 2 * 5 and set(grads["phase"]) == {"init", "trained"}
    assert set(forward["activation"]) == {"tanh", "relu"} and result["length"] == 5
    table, result = lab_memory("gru", 3, 0)
    assert table["lag"].tolist() == [1, 3] and list(result["cells"]) == ["gru"]


@pytest.mark.slow  # trains four small stacks
def test_depth_compares_four_stacks_on_one_budget():
    from ui.lab_tab import lab_depth

    accuracy, summary, result = lab_depth("gru", 3, 0)
    json.dumps(result)  # what the CLI writes with --json
    assert "1 layer(s), uni" in lab.table("depth", result)  # and prints
    assert [(c["layers"], c["bidirectional"]) for c in result["configs"]] == [
        (1, False),
        (2, False),
        (1, True),
        (2, True),
    ]
    params = [c["parameters"] for c in result["configs"]]
    assert params[0] < params[1] and params[0] < params[2] < params[3]  # deeper and wider cost more
    assert len(accuracy) == 4 * 2 and list(summary.columns)[-1] == "train seconds"
    assert all(0 <= a <= 1 for a in accuracy["accuracy"])
