import json
import shlex
import shutil

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tests.toy_data import SUBWORD_FLAGS, TINY_FLAGS, mixture_flags
from training.reexport import translator


def _with_command(export, tmp_path, toy_corpus, extra_flags=()):
    """A copy of the fixture's export whose card names the command that trained it."""
    copy = tmp_path / "translator"
    shutil.copytree(export, copy)
    card = json.loads((copy / "model_card.json").read_text(encoding="utf-8"))
    flags = ["--pairs", str(toy_corpus), "--run-dir", "unused", "--export-dir", str(copy), *TINY_FLAGS]
    flags += extra_flags
    card["training"]["command"] = shlex.join(["python", "-m", "training.translate", *flags])
    (copy / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return copy


def test_the_given_evaluation_sets_join_the_cards_and_replace_those_of_their_name():
    card = ["news=a/news", "tatoeba=b.txt"]
    assert translator._with_given(card, []) == card
    given = ["news=c/news", "more=d"]
    assert translator._with_given(card, given) == ["tatoeba=b.txt", "news=c/news", "more=d"]


def test_a_set_the_card_reports_but_no_command_names_stops_the_reexport_first(
    trained_export, toy_corpus, tmp_path, monkeypatch
):
    path = _with_command(trained_export[0], tmp_path, toy_corpus)
    monkeypatch.setattr(
        tf.saved_model, "load", lambda *_: pytest.fail("the re-export went on to load the model")
    )
    card = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    card["metrics"]["news"] = {"pairs": 1, "greedy": {"bleu": 1.0}}
    (path / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="reports news, which neither"):
        translator.reexport(path, no_repeat_ngram_size=3)
    with pytest.raises(ValueError, match="cannot read --eval-pairs news.*--eval-pairs NAME=PATH reads it"):
        translator.reexport(path, no_repeat_ngram_size=3, eval_pairs=[f"news={tmp_path / 'gone'}"])
    with pytest.raises(ValueError, match="names a set twice"):
        translator.reexport(path, no_repeat_ngram_size=3, eval_pairs=["news=a", "news=b"])
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == files


def test_reexport_reproduces_the_model_and_carries_its_vocabularies(trained_export, toy_corpus, tmp_path):
    aligned = tmp_path / "aligned"
    aligned.with_suffix(".es").write_text("El gato come pan .\n", encoding="utf-8")
    aligned.with_suffix(".en").write_text("The cat eats bread.\n", encoding="utf-8")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("The dog sees Maria.\tEl perro ve a María .\n", encoding="utf-8")
    # The card's own evaluation sets are measured again without being named on the command line.
    path = _with_command(trained_export[0], tmp_path, toy_corpus, ["--eval-pairs", f"toy={aligned}"])
    sentences = tf.constant(["El gato come pan .", "¿ María ve el perro ?", ""])
    before = tf.saved_model.load(str(path)).signatures["translate"](text=sentences)["translation"].numpy()
    card = translator.reexport(path, no_repeat_ngram_size=3, eval_pairs=[f"other={pairs}"])
    assert card["metrics"]["toy"]["pairs"] == card["metrics"]["other"]["pairs"] == 1
    assert set(card["metrics"]["toy"]) == {"pairs", "greedy", "beam4"}
    assert "loop_rate" in card["metrics"]["toy"]["greedy"]
    # Copying names is for subword models: a word model copies unknown words instead.
    assert card["export"]["decoding"] == {"no_repeat_ngram_size": 3, "copy_names": False}
    loaded = tf.saved_model.load(str(path))
    assert loaded.signatures["translate"](text=sentences)["translation"].numpy().tolist() == before.tolist()
    assert len(loaded.source_vocabulary.numpy()) == card["data"]["source_vocab"]
    assert not path.with_name(path.name + ".partial").exists()


def test_a_float16_export_that_strays_never_replaces_the_model(
    subword_export, toy_corpus, tmp_path, monkeypatch
):
    # A model as the training command exports it today (subword pieces, copying names, carrying
    # its target words): its exact check runs as a shipped model's re-export does.
    path = _with_command(
        subword_export[0], tmp_path, toy_corpus, [*mixture_flags(toy_corpus.parent), *SUBWORD_FLAGS]
    )
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    monkeypatch.setattr(translator, "MIN_SAME", 1.01)  # more than every sentence: no export passes
    # A new decoding setting is checked too: against exact weights decoding the new way.
    with pytest.raises(ValueError, match="translates only .* as exact weights do"):
        translator.reexport(path, no_repeat_ngram_size=0)
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["translator"]


def test_a_mixed_subword_export_older_than_copying_names_stays_subword_and_gains_the_target_words(
    subword_export, toy_corpus, tmp_path
):
    from seq2seq_app.core.vocabulary import RESERVED
    from seq2seq_app.translation.translator_export import TranslatorExport

    path = _with_command(
        subword_export[0], tmp_path, toy_corpus, [*mixture_flags(toy_corpus.parent), *SUBWORD_FLAGS]
    )
    card = json.loads((path / "model_card.json").read_text(encoding="utf-8"))
    loaded = tf.saved_model.load(str(path))
    src, tgt, target_words, args, _ = translator._vocabularies(loaded, card)
    old = tmp_path / "old"
    model = translator._model(loaded, args, src, tgt)
    TranslatorExport(model, src, tgt, args.max_output_length, copy_names=False).save(old)
    shutil.copy(path / "model_card.json", old / "model_card.json")
    # The SavedModel's root object, read without loading its functions: no target_words.
    saved = saved_model_pb2.SavedModel.FromString((old / "saved_model.pb").read_bytes())
    children = {child.local_name for child in saved.meta_graphs[0].object_graph_def.nodes[0].children}
    assert "source_vocabulary" in children and "target_words" not in children
    # Its exact check decodes as the old export did (no copying, the n-gram ban of 3); the float16
    # export is checked against exact weights decoding the new way (copying, no ban).
    card = translator.reexport(old, no_repeat_ngram_size=0)
    new = tf.saved_model.load(str(old))
    assert new.text_unit.numpy() == b"subword"
    assert len(new.target_vocabulary.numpy()) == card["data"]["target_vocab"]
    assert card["export"]["decoding"] == {"no_repeat_ngram_size": 0, "copy_names": True}
    assert bool(new.decoding_copy_names.numpy()) and int(new.decoding_no_repeat_ngram_size.numpy()) == 0
    # Rebuilt from the training data its card names: the words the training run wrote.
    assert [w.decode() for w in new.target_words.numpy()] == target_words.tokens[len(RESERVED) :]
    # Re-exported again, as a shipped model is, it keeps the target words it carries rather than
    # rebuilding them from the training data: shown on words the training data would not give.

    class Carrying:  # the re-exported model with other carried words
        target_words = tf.constant(["zz", "yy"])

        def __getattr__(self, name):
            return getattr(new, name)

    assert translator._vocabularies(Carrying(), card)[2].tokens == [*RESERVED, "zz", "yy"]
