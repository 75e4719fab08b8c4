import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app import LoadedTranslator, load_translator
from seq2seq_app.core.vocabulary import UNK_ID
from seq2seq_app.translation.translator_api import export_limits
from tests.plain_tf import run_with_tensorflow_alone

BAD_INPUTS = ["", "   \t ", "hola " * 2000, "😀🎉", "Привет 你好 hola 안녕", "x" * 10000]


@pytest.fixture(scope="module")
def translator(trained_export):
    return LoadedTranslator(trained_export[0])


@pytest.fixture(scope="module")
def module(trained_export):
    """The raw SavedModel, loaded once: a load and each signature's first call cost seconds."""
    return tf.saved_model.load(str(trained_export[0]))


def test_translate_signature_contract(module):
    out = module.signatures["translate"](text=tf.constant(["El gato come pan .", "Tom ve el perro ."]))
    assert out["translation"].dtype == tf.string and out["translation"].shape == (2,)
    b, t, s = out["attention"].shape
    assert b == 2 and out["attention"].dtype == tf.float32
    assert out["source_tokens"].shape == (2, s) and out["target_tokens"].shape == (2, t)
    rows = out["attention"].numpy().sum(-1)
    produced = out["target_tokens"].numpy() != b""
    np.testing.assert_allclose(rows[produced], 1.0, atol=1e-4)  # a distribution per output token
    assert np.all(np.isclose(rows, 1.0, atol=1e-4) | (rows == 0.0))  # padding steps are all zero


def test_beam_signature_contract_and_beam_one_equals_greedy(module):
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


def test_beam_search_in_chunks_gives_each_text_what_it_gets_alone(module):
    """A beam batch wider than one chunk is searched in length-sorted chunks; every row is still
    its text's own search, in the caller's order, padded to the batch's widths."""
    from seq2seq_app.translation.translator_export import SEARCH_CHUNK

    words = ["el gato", "come pan", "tom ve", "el perro", "bebe agua", "la casa", "de maría"]
    texts = [
        " ".join(words[(i + j) % len(words)] for j in range(1 + i % 5)) + " ."
        for i in range(SEARCH_CHUNK + 9)
    ]
    texts[3] = ""

    def beam(batch):
        out = module.signatures["translate_beam"](
            text=tf.constant(batch), beam_size=tf.constant(3), length_penalty=tf.constant(0.6)
        )
        return {k: v.numpy() for k, v in out.items()}

    together = beam(texts)
    empty = beam([""] * (SEARCH_CHUNK + 1))  # chunks that decode no step
    assert empty["candidates"].shape == (SEARCH_CHUNK + 1, 3) and not empty["candidates"].astype(bool).any()
    assert together["attention"].shape[2] == max(beam([t])["attention"].shape[2] for t in texts)
    for row, sentence in enumerate(texts):
        alone = beam([sentence])
        np.testing.assert_array_equal(together["candidates"][row], alone["candidates"][0])
        np.testing.assert_allclose(together["scores"][row], alone["scores"][0], atol=1e-4)
        t, s = alone["attention"].shape[1:]
        np.testing.assert_allclose(together["attention"][row, :t, :s], alone["attention"][0], atol=1e-5)
        assert not together["attention"][row, t:].any() and not together["attention"][row, :, s:].any()


def test_beam_size_is_clamped_to_a_sane_range(translator):
    for beam in (0, -3, 1000):
        out = translator.run(["El perro bebe agua ."], beam_size=beam)
        assert 1 <= out["candidates"].shape[1] <= 16


def test_any_temperature_samples_tokens_of_the_vocabulary(module):
    for temperature in (1e30, float("inf"), float("nan"), -1.0):
        out = module.signatures["translate_sample"](
            text=tf.constant(["El gato come pan ."] * 3), temperature=tf.constant(temperature)
        )
        assert out["translation"].shape == (3,)


def test_a_sentence_translates_the_same_alone_and_in_a_padded_batch(translator):
    sentence = "El niño ve la casa ."
    alone = translator.run([sentence])
    batched = translator.run([sentence, "Tom come pan . " * 8, ""])
    assert alone["translation"][0] == batched["translation"][0]
    t, s = alone["attention"].shape[1:]
    np.testing.assert_allclose(alone["attention"][0], batched["attention"][0, :t, :s], atol=1e-5)


def test_bad_inputs_give_strings_not_crashes(translator, module):
    for kwargs in ({}, {"beam_size": 3}, {"temperature": 0.8}):
        out = translator.translate(BAD_INPUTS, **kwargs)
        assert len(out) == len(BAD_INPUTS) and all(isinstance(o, str) for o in out)
    raw = module.signatures["translate"](text=tf.constant([b"\xff\xfe gato"]))
    assert raw["translation"].shape == (1,)
    assert translator.translate("") == ""


def test_a_text_past_the_word_cap_is_cut_and_says_so(translator):
    out = translator.run(["gato " * 5000, "El gato come pan ."])
    words = (out["source_tokens"] != b"").sum(axis=1)
    assert words.tolist() == [1000, 5]  # translated in pieces of 50 words, up to the cap
    assert out["truncated"].tolist()[0] and out["attention"].shape[1] <= 20 * 110


def test_empty_batch_gives_empty_outputs(module):
    empty = tf.constant([], tf.string)
    outputs = [
        module.signatures["translate"](text=empty),
        module.signatures["translate_sample"](text=empty, temperature=tf.constant(1.0)),
        module.signatures["translate_beam"](
            text=empty, beam_size=tf.constant(2), length_penalty=tf.constant(0.6)
        ),
    ]
    assert set(outputs[2]) > set(outputs[0]) == set(outputs[1])
    assert all(value.shape[0] == 0 for out in outputs for value in out.values())


def test_python_api_shapes_and_errors(translator, tmp_path):
    assert isinstance(translator.translate("El gato come pan ."), str)
    assert len(translator.translate(["a", "b", "c"], batch_size=2)) == 3
    with pytest.raises(TypeError, match="strings"):
        translator.translate([None])
    with pytest.raises(FileNotFoundError, match="training.translate"):
        load_translator(tmp_path / "missing")
    assert translator.card["task"] == "translate"


def test_saved_model_matches_the_in_memory_export(trained_export, module):
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
    loaded = module.signatures["translate"](text=tf.constant(["El gato ve el perro ."]))
    assert in_memory["translation"].numpy()[0] == loaded["translation"].numpy()[0]
    np.testing.assert_allclose(in_memory["attention"].numpy(), loaded["attention"].numpy(), atol=1e-6)


PLAIN_TF_SCRIPT = r"""
for path in sys.argv[1:]:
    m = tf.saved_model.load(path)
    out = m.signatures["translate"](text=tf.constant(["El gato come pan ."]))
    beam = m.signatures["translate_beam"](text=tf.constant(["El gato come pan ."]),
                                          beam_size=tf.constant(3), length_penalty=tf.constant(0.6))
    assert out["translation"].shape == (1,) and beam["candidates"].shape == (1, 3)
    print(out["translation"].numpy()[0].decode())
"""


def test_word_and_subword_saved_models_run_with_tensorflow_alone(trained_export, subword_saved, tmp_path):
    printed = run_with_tensorflow_alone(PLAIN_TF_SCRIPT, [trained_export[0], subword_saved[1]], tmp_path)
    assert len(printed.splitlines()) == 2 and all(line.strip() for line in printed.splitlines())


def test_model_card_records_data_metrics_and_command(trained_export):
    export_dir, card = trained_export
    on_disk = json.loads((export_dir / "model_card.json").read_text())
    assert on_disk == card
    assert card["data"]["malformed_lines"] == 2
    assert {"bleu", "chrf"} <= set(card["metrics"]["greedy"])
    assert card["training"]["command"].startswith("python -m ")
    assert card["hyperparameters"]["parameters"] > 0
    assert (export_dir / "README.md").read_text().startswith("# ")


# Subword exports. A copy model (it outputs the source pieces in order, attending each in turn) makes
# the text handling exact to test; a tiny untrained `Translator` checks the SavedModel contract.
SUBWORD_TRAINING = [
    "¿Dónde está la estación de autobuses?",
    "Llegamos a Sevilla a las 7:15, con 30 euros y un 😀.",
    "Buenos días, señor Núñez: ¡qué alegría!",
    "Tom y María comen pan en la casa grande.",
]
SUBWORD_INPUTS = [
    "¿Dónde está Tom? Son las 8:30.",
    "Tengo 45 euros, ¡olé! 😀",
    "Привет, 你好 amigo 🎉 Straße",
    "",
    "señora Núñez: ¿la estación?",
]


def _pieces(sentences: list[str], size: int, lowercase: bool):
    from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
    from seq2seq_app.core.text import tokenize_all

    return SubwordVocabulary.learn(tokenize_all(sentences, lowercase=lowercase), vocab_size=size)


class _CopyModel:
    """Decodes a source's piece ids back in order, attending to each in turn (and then END)."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        # Unused: the export reads an output layer, which the steps here do not need.
        self.output_layer = (
            keras.Variable(np.zeros([vocab_size, 2], "float32")),
            keras.Variable(np.zeros([vocab_size], "float32")),
        )
        self.weights = list(self.output_layer)

    def encode(self, ids):
        return ids, tf.zeros([tf.shape(ids)[0]], tf.int32)

    def decode_step(self, tokens, state, **tables):
        ids, position = state
        width = tf.shape(ids)[1]
        at = tf.minimum(position, width - 1)
        logits = 10.0 * tf.one_hot(tf.gather(ids, at, batch_dims=1), self.vocab_size)
        return logits, tf.one_hot(at, width), (ids, position + 1)


@pytest.fixture(scope="module")
def copy_export():
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    return TranslatorExport(_CopyModel(len(vocab)), vocab, vocab, no_repeat_ngram_size=0), vocab


def _copied(texts: list[str], unseen_words: set[str]) -> list[str]:
    """What the copy model must write: each sentence's words lowercased (as its pieces spell them)
    unless they hold an unseen character (copied whole, in their own case), detokenised sentence by
    sentence and joined."""
    from seq2seq_app.core import text

    out = []
    for sentences in text.split_sentences(tf.constant(texts)).to_list():
        tokens = text.tokenize(tf.constant(sentences or [""]), False).to_list()
        words = [[w.decode() for w in row] for row in tokens]
        rows = [[w if w in unseen_words else w.lower() for w in row] for row in words]
        detokenized = text.detokenize(tf.ragged.constant(rows, tf.string)).numpy()
        joined = text.join_sentences(tf.ragged.constant([detokenized]))
        out.append(joined.numpy()[0].decode())
    return out


def test_subword_export_round_trips_accents_digits_punctuation_emoji_and_unseen_scripts(copy_export):
    from seq2seq_app.core import text

    export, vocab = copy_export
    out = export.translate(tf.constant(SUBWORD_INPUTS))
    cased = [[w.decode() for w in row] for row in text.tokenize(tf.constant(SUBWORD_INPUTS), False).to_list()]
    flat = [w for row in cased for w in row]
    unseen = vocab.unknown_characters(tf.ragged.constant([[w.lower()] for w in flat]))
    unseen_words = {w for w, chars in zip(flat, unseen.numpy()) if chars}
    translations = [t.decode() for t in out["translation"].numpy()]
    assert translations == _copied(SUBWORD_INPUTS, unseen_words)
    assert not any("[UNK]" in t or "##" in t for t in translations)
    assert {"Привет", "你好", "🎉", "Straße"} <= unseen_words  # reported, then copied (ß alone is unseen)
    assert all(w in translations[2] for w in ("Привет", "你好", "🎉", "Straße"))
    # The contract speaks words: tokens and attention are per word, attention rows distributions.
    assert out["source_tokens"].numpy()[1].tolist()[:7] == [
        b"Tengo",
        b"45",
        b"euros",
        b",",
        b"\xc2\xa1",
        b"ol\xc3\xa9",
        b"!",
    ]
    b, t, s = out["attention"].shape
    assert (b, t, s) == (5, out["target_tokens"].shape[1], out["source_tokens"].shape[1])
    words = out["target_tokens"].numpy()
    rows = out["attention"].numpy().sum(-1)
    np.testing.assert_allclose(rows[words != b""], 1.0, atol=1e-5)
    # Copying attends to word i when writing word i: over the source words (each sentence's end
    # marker column left out) the merged attention is the identity.
    n = int((words[0] != b"").sum())
    columns = out["source_tokens"].numpy()[0] != b""
    np.testing.assert_allclose(out["attention"].numpy()[0, :n][:, columns], np.eye(n), atol=1e-6)
    assert not out["truncated"].numpy().any()


class _GuessModel(_CopyModel):
    """As `_CopyModel`, but where the source has [UNK] it writes a known piece instead, as a model
    guesses at a word it cannot read; with `attend_to`, it attends to that piece throughout."""

    def __init__(self, vocab_size: int, guess: int, attend_to: int | None = None):
        super().__init__(vocab_size)
        self.guess, self.attend_to = guess, attend_to

    def decode_step(self, tokens, state, **tables):
        ids, position = state
        at = tf.minimum(position, tf.shape(ids)[1] - 1)
        token = tf.gather(ids, at, batch_dims=1)
        token = tf.where(tf.equal(token, UNK_ID), self.guess, token)
        looked_at = at if self.attend_to is None else tf.fill(tf.shape(at), self.attend_to)
        attention = tf.one_hot(looked_at, tf.shape(ids)[1])
        return 10.0 * tf.one_hot(token, self.vocab_size), attention, (ids, position + 1)


@pytest.mark.parametrize("attend_to", [None, 1])
def test_a_word_the_model_cannot_read_is_passed_through_once_not_guessed(attend_to):
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    model = _GuessModel(len(vocab), vocab.tokens.index("est"), attend_to)
    export = TranslatorExport(model, vocab, vocab, no_repeat_ngram_size=0)
    texts = ["tom y Жанна comen pan.", "🎉 y Привет", "la casa grande", "te quiero ❤\ufe0f."]
    out = export.translate(tf.constant(texts))
    translations = [t.decode() for t in out["translation"].numpy()]
    if attend_to is None:  # the guesses written while attending to them are replaced, each word once
        assert translations[:2] == ["Tom y Жанна comen pan.", "🎉 Y Привет"]
    else:  # every word attends to the second piece: an unreadable word no word attended to goes
        # in after the last word written for a source word before it, or first if there is none
        assert translations[0].startswith("Tom y est") and translations[0].endswith("pan Жанна.")
        assert translations[1] == "🎉 Est y est est est est est est Привет"
    for text, translation in zip(texts, translations):
        for word in ("Жанна", "Привет", "🎉"):
            assert translation.count(word) == text.count(word)
    assert translations[2] == "La casa grande"  # words the model can read are untouched
    # A variation selector is no word of its own: "❤" passes through, the selector stays unread.
    assert translations[3].count("❤") == 1 and "\ufe0f" not in translations[3]
    for text, translation in zip(texts, translations):  # as in any batch
        assert export.translate(tf.constant([text]))["translation"].numpy()[0].decode() == translation
    produced = out["target_tokens"].numpy() != b""
    np.testing.assert_allclose(out["attention"].numpy().sum(-1)[produced], 1.0, atol=1e-5)


class _SkipModel(_CopyModel):
    """As `_CopyModel`, but it writes nothing for pieces it cannot read ([UNK]): it goes on with the
    next piece it can, as a model that drops a name it cannot read."""

    def decode_step(self, tokens, state, **tables):
        ids, position = state
        width = tf.shape(ids)[1]
        ahead = tf.range(width)[None, :] >= tf.minimum(position, width - 1)[:, None]
        readable = ahead & tf.not_equal(ids, UNK_ID)
        at = tf.where(
            tf.reduce_any(readable, 1), tf.argmax(tf.cast(readable, tf.int32), 1, tf.int32), width - 1
        )
        logits = 10.0 * tf.one_hot(tf.gather(ids, at, batch_dims=1), self.vocab_size)
        return logits, tf.one_hot(at, width), (ids, at + 1)


def test_an_unreadable_word_nothing_was_written_for_goes_after_the_word_before_it():
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    export = TranslatorExport(_SkipModel(len(vocab)), vocab, vocab, no_repeat_ngram_size=0)
    texts = ["tom y Жанна, comen pan.", "Жанна come pan.", "tom come 🎉 y 🎉 pan"]
    out = export.translate(tf.constant(texts))
    translations = [t.decode() for t in out["translation"].numpy()]
    assert translations == ["Tom y Жанна, comen pan.", "Жанна come pan.", "Tom come 🎉 y 🎉 pan"]
    # Its token and attention row come with it: all its attention on its own source word.
    target, source = (list(out[key].numpy()[0]) for key in ("target_tokens", "source_tokens"))
    row = out["attention"].numpy()[0, target.index("Жанна".encode())]
    np.testing.assert_allclose(row, np.eye(len(source))[source.index("Жанна".encode())], atol=1e-6)


class _ScriptModel(_CopyModel):
    """Writes a script: for each source (`sources`, the export's source ids [b, s]), given target
    ids with given attention over the source ids (`attention` [b, steps, source ids]), then END.
    The export may search its rows in any order and trimmed to their longest."""

    def __init__(self, vocab_size: int, ids: list[list[int]], attention: np.ndarray):
        super().__init__(vocab_size)
        self.script = tf.constant(ids), tf.constant(attention, tf.float32)
        self.sources = None

    def encode(self, ids):
        width = tf.shape(ids)[1]
        same = tf.reduce_all(tf.equal(ids[:, None, :], self.sources[None, :, :width]), axis=-1)
        row = tf.argmax(same & tf.reduce_all(tf.equal(self.sources[:, width:], 0), axis=-1), axis=1)
        return ids, tf.zeros([tf.shape(ids)[0]], tf.int32), *[tf.gather(x, row) for x in self.script]

    def decode_step(self, tokens, state, **tables):
        ids, position, script, attention = state
        at = tf.minimum(position, tf.shape(script)[1] - 1)
        token = tf.gather(script, at, batch_dims=1)
        weights = tf.gather(attention, at, batch_dims=1)[:, : tf.shape(ids)[1]]
        return 10.0 * tf.one_hot(token, self.vocab_size), weights, (ids, position + 1, script, attention)


def _name_script(src, tgt, rows):
    """A `_ScriptModel` script from rows of (source text, [(target word, source word index, or
    {source word index: attention})]): each target word's pieces attend to the first piece of
    their source word(s)."""
    from seq2seq_app.core import text
    from seq2seq_app.core.vocabulary import END_ID

    ids, weights = [], []
    for source, written in rows:
        words = text.lowercase_tokens(text.tokenize(tf.constant([source]), lowercase=False))
        first_piece = {}
        for column, word in enumerate(src.segment(words)[2].to_list()[0]):
            first_piece.setdefault(word, column)
        pieces = tgt.segment(tf.ragged.constant([[w for w, _ in written]]))
        ids.append(pieces[0].to_list()[0] + [END_ID])
        rows_weights = []
        for i in pieces[2].to_list()[0]:
            looked_at = written[i][1] if isinstance(written[i][1], dict) else {written[i][1]: 1.0}
            rows_weights.append({first_piece[word]: w for word, w in looked_at.items()})
        weights.append(rows_weights + [{0: 1.0}])
    steps, width = max(map(len, ids)), 64
    attention = np.zeros([len(rows), steps, width], "float32")
    attention[:, :, 0] = 1.0  # END and padding steps
    for row, row_weights in enumerate(weights):
        for step, looked_at in enumerate(row_weights):
            attention[row, step] = 0.0
            for column, w in looked_at.items():
                attention[row, step, column] = w
    return [row + [END_ID] * (steps - len(row)) for row in ids], attention


@pytest.mark.parametrize("copy_names", [True, False])
def test_a_name_spelled_out_piece_by_piece_is_the_source_name_once(copy_names):
    from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.translation.translator_export import TranslatorExport

    english = [
        "Where is the bus station?",
        "Tom and Mary eat bread in the big house.",
        "Good morning, Mr Núñez: what a joy!",
        "Mules like Tomas.",
        "We arrive in Seville.",
    ]
    # "tom" one piece: as a sentence's first word, it is no name.
    src = SubwordVocabulary([*_pieces(SUBWORD_TRAINING, 80, lowercase=True).tokens, "tom"])
    tgt = _pieces(english, 80, lowercase=False)
    # The target side's words: what the model writes from among them is its own translation.
    known = Vocabulary(["seville", "in", "eats", "núñez"])
    rows = [
        # A look-alike of a name after a word, twice; a known word; another initial letter.
        ("Vi a Núñez en Sevilla.", [("Núñes", 2), ("Núñes", 2), ("in", 3), ("Seville", 4), ("Mules", 2)]),
        ("Tom come pan.", [("Tomas", 0), ("eats", 1)]),  # a sentence's first word, one piece
        ("¿Tom come pan?", [("Tomas", 1), ("eats", 2)]),  # so after opening punctuation
        ("Vi a Tom.", [("Tomas", 2)]),  # one piece, but a word comes before it
        ("Núñez come pan.", [("Núñes", 0), ("eats", 1)]),  # a first word of several pieces
        ("Vi a Núñez.", [("Núñez", 2), ("Núñes", 2)]),  # the name written right, then a look-alike
        # A name the model cannot read ("š"), attended below PASS_AT: copied, and not again
        # as an unreadable word nothing was written for.
        ("Vi a Tomáš en Sevilla.", [("Tomas", {2: 0.4, 0: 0.3, 3: 0.3}), ("in", 3), ("Seville", 4)]),
    ]
    ids, attention = _name_script(src, tgt, rows)
    model = _ScriptModel(len(tgt), ids, attention)
    export = TranslatorExport(
        model, src, tgt, no_repeat_ngram_size=0, copy_names=copy_names, target_words=known
    )
    texts = tf.constant([source for source, _ in rows])
    model.sources = export._encode_text(texts).ids
    out = export.translate(texts)
    translations = [t.decode() for t in out["translation"].numpy()]
    if copy_names:
        assert translations == [
            "Núñez in Seville Mules",
            "Tomas eats",
            "Tomas eats",
            "Tom",
            "Núñez eats",
            "Núñez",
            "Tomáš in Seville",
        ]
    else:
        assert translations == [
            "Núñes Núñes in Seville Mules",
            "Tomas eats",
            "Tomas eats",
            "Tomas",
            "Núñes eats",
            "Núñez Núñes",
            "Tomas Tomáš in Seville",
        ]
    assert bool(export.decoding_copy_names.numpy()) is copy_names
    produced = out["target_tokens"].numpy() != b""
    assert [t.decode() for t in out["target_tokens"].numpy()[0][produced[0]]] == translations[0].split()
    np.testing.assert_allclose(out["attention"].numpy().sum(-1)[produced], 1.0, atol=1e-5)
    beam = export.translate_beam(tf.constant([source for source, _ in rows]), 1, 0.6)
    assert [t.decode() for t in beam["translation"].numpy()] == translations  # beam 1 = greedy


def test_a_paragraph_is_translated_sentence_by_sentence_and_over_long_sentences_in_pieces():
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    export = TranslatorExport(
        _CopyModel(len(vocab)), vocab, vocab, no_repeat_ngram_size=0, max_source_tokens=6
    )
    long = "Tom y María comen pan en la casa grande con 30 euros."  # 12 words and a full stop
    paragraph = f"¿Dónde está la estación? {long} Son las 7:15."
    out = export.translate(tf.constant([paragraph, "Tom come pan.", ""]))
    assert out["translation"].numpy()[0].decode() == (
        "¿Dónde está la estación? Tom y maría comen pan en La casa grande con 30 euros. Son las 7:15."
    )  # every sentence and every 6-word piece translated; a piece starts with a capital
    source = out["source_tokens"].numpy()[0].tolist()
    # Each unit's words are followed by its end marker column, unit after unit.
    assert source[:6] == [b"\xc2\xbf", b"D\xc3\xb3nde", b"est\xc3\xa1", b"la", b"estaci\xc3\xb3n", b"?"]
    assert source[6] == b"" and source.count(b"") >= 5
    attention = out["attention"].numpy()[0]
    words = out["target_tokens"].numpy()[0] != b""
    np.testing.assert_allclose(attention[words].sum(-1), 1.0, atol=1e-6)
    # Block-diagonal: the first sentence's words attend only to the first sentence's columns.
    assert attention[:6, 7:].sum() == 0.0 and attention[6:, :7].sum() == 0.0
    alone = export.translate(tf.constant(["Tom come pan."]))
    assert out["translation"].numpy()[1] == alone["translation"].numpy()[0]
    assert out["translation"].numpy()[2] == b"" and not out["truncated"].numpy().any()
    beam = export.translate_beam(tf.constant([paragraph]), tf.constant(2), tf.constant(0.6))
    assert beam["candidates"].numpy()[0, 0] == out["translation"].numpy()[0]
    assert beam["scores"].shape == (1, 2)


def test_a_text_of_many_sentences_keeps_its_first_units_and_says_it_was_cut():
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    export = TranslatorExport(_CopyModel(len(vocab)), vocab, vocab, no_repeat_ngram_size=0, max_text_units=4)
    out = export.translate(tf.constant(["Sí. " * 10, "Sí. " * 4]))
    assert [t.decode().count("Sí.") for t in out["translation"].numpy()] == [4, 4]
    assert out["truncated"].numpy().tolist() == [True, False]


class _EndlessModel(_CopyModel):
    """Never writes END: always the first source piece."""

    def decode_step(self, tokens, state, **tables):
        logits, attention, state = super().decode_step(tokens, state)
        return 10.0 * tf.one_hot(state[0][:, 0], self.vocab_size), attention, state


def test_an_output_cut_at_the_length_cap_says_so():
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = _pieces(SUBWORD_TRAINING, 80, lowercase=True)
    export = TranslatorExport(_EndlessModel(len(vocab)), vocab, vocab, no_repeat_ngram_size=0)
    out = export.translate(tf.constant(["Tom come pan.", "", "Hola. Tom come pan."]))
    assert out["truncated"].numpy().tolist() == [True, False, True]
    assert len(out["target_tokens"].numpy()[0]) >= 2 * 4 + 10  # it ran to the cap


@pytest.mark.slow
def test_subword_beam_one_and_zero_temperature_equal_greedy(copy_export):
    # With the copy model, whose choices win by wide margins: an untrained model's near-equal logits
    # can rank differently under argmax and under log-softmax top-k on long outputs, in word mode too.
    export, _ = copy_export
    texts = tf.constant(SUBWORD_INPUTS)
    greedy = export.translate(texts)
    one = export.translate_beam(texts, tf.constant(1), tf.constant(0.6))
    cold = export.translate_sample(texts, tf.constant(0.0))
    for other in (one, cold):
        np.testing.assert_array_equal(other["translation"].numpy(), greedy["translation"].numpy())
        np.testing.assert_allclose(other["attention"].numpy(), greedy["attention"].numpy(), atol=1e-6)
    three = export.translate_beam(texts, tf.constant(3), tf.constant(0.6))
    assert three["candidates"].shape == (5, 3)
    np.testing.assert_array_equal(three["candidates"].numpy()[:, 0], three["translation"].numpy())
    # The input and output stages are shared by the three signatures, not traced once each.
    assert export._encode_text.experimental_get_tracing_count() == 1
    assert export._outputs.experimental_get_tracing_count() == 1


def test_the_export_carries_its_caps_and_older_exports_get_the_old_ones(copy_export):
    from seq2seq_app.translation.translator_api import DEFAULT_LIMITS
    from seq2seq_app.translation.translator_export import TranslatorExport

    vocab = copy_export[1]
    export = TranslatorExport(_CopyModel(len(vocab)), vocab, vocab, max_source_tokens=7, max_text_units=3)
    assert export_limits(export) == {**DEFAULT_LIMITS, "max_source_tokens": 7, "max_text_units": 3}
    assert export_limits(tf.Module()) == DEFAULT_LIMITS
    with pytest.raises(ValueError, match="at least max_source_tokens"):
        TranslatorExport(_CopyModel(len(vocab)), vocab, vocab, max_text_tokens=10)


def test_subword_and_word_vocabularies_do_not_mix(copy_export):
    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.translation.translator_export import TranslatorExport

    _, vocab = copy_export
    with pytest.raises(TypeError, match="one kind"):
        TranslatorExport(_CopyModel(len(vocab)), vocab, Vocabulary(["a"]))


@pytest.fixture(scope="module")
def subword_saved(tmp_path_factory):
    """A tiny untrained subword translator, exported in memory and saved."""
    from seq2seq_app.translation.translator import Translator
    from seq2seq_app.translation.translator_export import TranslatorExport
    from tests.toy_data import toy_pairs

    english, spanish = zip(*toy_pairs(200))
    src = _pieces(list(spanish) + SUBWORD_TRAINING, 60, lowercase=True)
    tgt = _pieces(list(english), 50, lowercase=False)
    model = Translator(len(src), len(tgt), embedding_dim=8, units=16)
    model({"source": np.ones((1, 2), "int32"), "target_in": np.ones((1, 2), "int32")})
    export = TranslatorExport(model, src, tgt)
    path = tmp_path_factory.mktemp("subword") / "export"
    export.save(path)
    return export, path


@pytest.mark.slow
def test_subword_saved_model_matches_the_in_memory_export_and_keeps_the_word_contract(subword_saved):
    export, path = subword_saved
    loaded = tf.saved_model.load(str(path))
    assert loaded.text_unit.numpy() == b"subword"
    assert len(loaded.source_vocabulary.numpy()) == len(export.source_vocabulary.numpy())
    texts = tf.constant(SUBWORD_INPUTS + ["El gato come pan . " * 30])
    for name, kwargs in [
        ("translate", {}),
        ("translate_beam", {"beam_size": tf.constant(3), "length_penalty": tf.constant(0.6)}),
    ]:
        mine = getattr(export, name)(texts, *kwargs.values())
        theirs = loaded.signatures[name](text=texts, **kwargs)
        np.testing.assert_array_equal(mine["translation"].numpy(), theirs["translation"].numpy())
        np.testing.assert_allclose(mine["attention"].numpy(), theirs["attention"].numpy(), atol=1e-5)
        b, t, s = theirs["attention"].shape
        assert theirs["target_tokens"].shape == (b, t) and theirs["source_tokens"].shape == (b, s)
        rows = theirs["attention"].numpy().sum(-1)
        assert np.all(np.isclose(rows, 1.0, atol=1e-4) | (rows == 0.0))
        produced = theirs["target_tokens"].numpy() != b""
        np.testing.assert_allclose(rows[produced], 1.0, atol=1e-4)
        assert not any(b"[UNK]" in x or b"##" in x for x in theirs["translation"].numpy())
    empty = loaded.signatures["translate"](text=tf.constant([], tf.string))
    assert empty["translation"].shape == (0,)
    sampled = loaded.signatures["translate_sample"](text=texts, temperature=tf.constant(1.0))
    assert sampled["attention"].shape[1:] == (
        sampled["target_tokens"].shape[1],
        sampled["source_tokens"].shape[1],
    )
    assert {name: int(value.numpy()) for name, value in loaded.limits.items()} == export_limits(export)
    api = LoadedTranslator(path)  # loaded once for both checks: a load costs seconds
    assert api.limits == export_limits(export)
    # The UI's "not in the vocabulary" note: a word is known when its characters are pieces.
    assert api.in_vocabulary(["gatos", "niño", "你好", "15", ""]) == [
        True,
        True,
        False,
        True,
        True,
    ]
