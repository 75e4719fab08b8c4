import json

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app import LoadedTranslator, load_translator
from tests.plain_tf import run_with_tensorflow_alone

BAD_INPUTS = ["", "   \t ", "hola " * 2000, "😀🎉", "Привет 你好 hola 안녕", "x" * 10000]


@pytest.fixture(scope="module")
def translator(trained_export):
    return LoadedTranslator(trained_export[0])


def test_translate_signature_contract(trained_export):
    module = tf.saved_model.load(str(trained_export[0]))
    out = module.signatures["translate"](text=tf.constant(["El gato come pan .", "Tom ve el perro ."]))
    assert out["translation"].dtype == tf.string and out["translation"].shape == (2,)
    b, t, s = out["attention"].shape
    assert b == 2 and out["attention"].dtype == tf.float32
    assert out["source_tokens"].shape == (2, s) and out["target_tokens"].shape == (2, t)
    rows = out["attention"].numpy().sum(-1)
    produced = out["target_tokens"].numpy() != b""
    np.testing.assert_allclose(rows[produced], 1.0, atol=1e-4)  # a distribution per output token
    assert np.all(np.isclose(rows, 1.0, atol=1e-4) | (rows == 0.0))  # padding steps are all zero


def test_beam_signature_contract_and_beam_one_equals_greedy(trained_export):
    module = tf.saved_model.load(str(trained_export[0]))
    text = tf.constant(["El gato come pan .", "¿María bebe agua ?", ""])
    greedy = module.signatures["translate"](text=text)
    one = module.signatures["translate_beam"](
        text=text, beam_size=tf.constant(1), length_penalty=tf.constant(0.6)
    )
    np.testing.assert_array_equal(one["translation"].numpy(), greedy["translation"].numpy())
    np.testing.assert_allclose(one["attention"].numpy(), greedy["attention"].numpy(), atol=1e-6)
    four = module.signatures["translate_beam"](
        text=text, beam_size=tf.constant(4), length_penalty=tf.constant(0.6)
    )
    assert four["candidates"].shape == (3, 4) and four["scores"].shape == (3, 4)
    assert four["scores"].dtype == tf.float32
    assert np.all(np.diff(four["scores"].numpy(), axis=1) <= 1e-6)
    np.testing.assert_array_equal(four["candidates"].numpy()[:, 0], four["translation"].numpy())


def test_beam_size_is_clamped_to_a_sane_range(translator):
    for beam in (0, -3, 1000):
        out = translator.run(["El perro bebe agua ."], beam_size=beam)
        assert 1 <= out["candidates"].shape[1] <= 16


def test_a_sentence_translates_the_same_alone_and_in_a_padded_batch(translator):
    sentence = "El niño ve la casa ."
    alone = translator.run([sentence])
    batched = translator.run([sentence, "Tom come pan . " * 8, ""])
    assert alone["translation"][0] == batched["translation"][0]
    t, s = alone["attention"].shape[1:]
    np.testing.assert_allclose(alone["attention"][0], batched["attention"][0, :t, :s], atol=1e-5)


def test_bad_inputs_give_strings_not_crashes(translator):
    for kwargs in ({}, {"beam_size": 3}, {"temperature": 0.8}):
        out = translator.translate(BAD_INPUTS, **kwargs)
        assert len(out) == len(BAD_INPUTS) and all(isinstance(o, str) for o in out)
    raw = tf.saved_model.load(str(translator.path)).signatures["translate"](
        text=tf.constant([b"\xff\xfe gato"])
    )
    assert raw["translation"].shape == (1,)
    assert translator.translate("") == ""


def test_long_input_is_truncated_and_output_capped(translator):
    out = translator.run(["gato " * 5000])
    assert out["source_tokens"].shape[1] <= 101 and out["attention"].shape[1] <= 100


def test_empty_batch_gives_empty_outputs(trained_export):
    module = tf.saved_model.load(str(trained_export[0]))
    out = module.signatures["translate"](text=tf.constant([], tf.string))
    assert out["translation"].shape == (0,)
    beam = module.signatures["translate_beam"](
        text=tf.constant([], tf.string), beam_size=tf.constant(2), length_penalty=tf.constant(0.6)
    )
    assert beam["candidates"].shape[0] == 0


def test_python_api_shapes_and_errors(translator, tmp_path):
    assert isinstance(translator.translate("El gato come pan ."), str)
    assert len(translator.translate(["a", "b", "c"], batch_size=2)) == 3
    with pytest.raises(TypeError, match="strings"):
        translator.translate([None])
    with pytest.raises(FileNotFoundError, match="training.translate"):
        load_translator(tmp_path / "missing")
    assert translator.card["task"] == "translate"


def test_saved_model_matches_the_in_memory_export(trained_export):
    """save -> load identity: the SavedModel computes what the trained Keras model computes."""
    import keras

    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.translation.translator import Translator
    from seq2seq_app.translation.translator_export import TranslatorExport

    export_dir, card = trained_export
    run_dir = export_dir.parent / "run"
    src, tgt = Vocabulary.load(run_dir / "source_vocab.txt"), Vocabulary.load(run_dir / "target_vocab.txt")
    hp = card["hyperparameters"]
    model = Translator(len(src), len(tgt), hp["embedding_dim"], hp["units"], hp["cell"])
    model({"source": np.ones((1, 2), "int32"), "target_in": np.ones((1, 2), "int32")})
    model.load_weights(run_dir / "final.weights.h5")
    keras.mixed_precision.set_global_policy("float32")
    exporter = TranslatorExport(model, src, tgt)
    in_memory = exporter.translate(tf.constant(["El gato ve el perro ."]))
    loaded = tf.saved_model.load(str(export_dir)).signatures["translate"](
        text=tf.constant(["El gato ve el perro ."])
    )
    assert in_memory["translation"].numpy()[0] == loaded["translation"].numpy()[0]
    np.testing.assert_allclose(in_memory["attention"].numpy(), loaded["attention"].numpy(), atol=1e-6)


PLAIN_TF_SCRIPT = r"""
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["translate"](text=tf.constant(["El gato come pan ."]))
beam = m.signatures["translate_beam"](text=tf.constant(["El gato come pan ."]),
                                      beam_size=tf.constant(3), length_penalty=tf.constant(0.6))
assert out["translation"].shape == (1,) and beam["candidates"].shape == (1, 3)
print(out["translation"].numpy()[0].decode())
"""


def test_saved_model_runs_with_tensorflow_alone(trained_export, tmp_path):
    assert run_with_tensorflow_alone(PLAIN_TF_SCRIPT, trained_export[0], tmp_path).strip() != ""


def test_model_card_records_data_metrics_and_command(trained_export):
    export_dir, card = trained_export
    on_disk = json.loads((export_dir / "model_card.json").read_text())
    assert on_disk == card
    assert card["data"]["malformed_lines"] == 2
    assert {"bleu", "chrf"} <= set(card["metrics"]["greedy"])
    assert card["training"]["command"].startswith("python -m ")
    assert card["hyperparameters"]["parameters"] > 0
    assert (export_dir / "README.md").read_text().startswith("# ")
