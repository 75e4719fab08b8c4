"""A shipped translator re-exported through today's export code, without its training run.

The decoding and text handling live in the export, not in the weights, so a trained model gains
export fixes (e.g. the repeated n-gram ban) without retraining. The weights come from the
SavedModel itself (`model_variables`, in the order the export saved them); the vocabularies from
the SavedModel when it carries them (words or subword pieces, as its `text_unit` says; exports
without one are word-level), otherwise they are rebuilt from the training data its card names,
exactly as the training command built them, and checked: the source vocabulary against the
SavedModel's lookup table, the target one by decoding test sentences as the old export did and
requiring the old SavedModel's outputs word for word. The card's evaluation sets (its training
command's `--eval-pairs`, and any given here) are measured again; a set the card reports that
neither names is an error. The old folder is replaced only when the new export is complete
(`safe_export`).

Example:
    python -m training.reexport saved_models/translate_spa_en \\
        --eval-pairs newstest2012=../shared/data/translation/spa-eng/news/newstest2012
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from training.reexport.weights import copy_variables, reexport_section

CHECK_SENTENCES = 300
# Float16 rounding flips an argmax now and then; more changed translations than this is a broken
# export, which then never replaces the user's model.
MIN_SAME = 0.9
VOCABULARY_VARIABLES = ("source_vocabulary", "target_vocabulary", "text_unit")


def _with_given(card_sets: list[str], given: list[str]) -> list[str]:
    """The evaluation sets (`NAME=PATH`) the card's training command named, each replaced by a
    given set of the same name, then the other given sets."""
    names = {spec.partition("=")[0] for spec in given}
    return [spec for spec in card_sets if spec.partition("=")[0] not in names] + list(given)


def _evaluation_sets(card: dict, given: list[str]) -> dict:
    """The sets a re-export measures, by name: those of the card's training command and the
    `given` ones (`_with_given`). Every set the card reports must be among them, so that no figure
    stays from the weights' earlier export; they are read before anything slow runs."""
    from training import translate

    args = translate.args_from_card(card)
    args.eval_pairs = _with_given(args.eval_pairs, given)
    names = [spec.partition("=")[0] for spec in args.eval_pairs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"--eval-pairs names a set twice: {', '.join(twice)}")
    reported = {
        name for name, value in card["metrics"].items() if isinstance(value, dict) and "pairs" in value
    }
    missing = sorted(reported - set(names))
    if missing:
        raise ValueError(
            f"the card reports {', '.join(missing)}, which neither its training command nor --eval-pairs "
            "names: give --eval-pairs NAME=PATH for each, so that no figure stays from the earlier export"
        )
    try:
        return translate.read_eval_sets(args)
    except SystemExit as e:
        raise ValueError(
            f"{e} (a set of the card's training command or of this command; "
            "--eval-pairs NAME=PATH reads it from elsewhere)"
        ) from e


def _vocabularies(loaded, card: dict):
    """(source, target, target words, translate args, test split); vocabularies and target words
    rebuilt if the model lacks them."""
    import numpy as np
    import tensorflow as tf

    from seq2seq_app.core.vocabulary import Vocabulary
    from seq2seq_app.translation.data_source import BACK_TRANSLATION_TAG
    from training import translate

    args = translate.args_from_card(card)
    with tempfile.TemporaryDirectory() as run_dir:
        _, _, test, src, tgt, _ = translate.prepare(args, Path(run_dir))
        target_words = Vocabulary.load(Path(run_dir) / translate.TARGET_WORDS_FILE)
    if hasattr(loaded, "target_words"):
        target_words = Vocabulary(t.decode() for t in loaded.target_words.numpy())
    carried = translate.export_vocabularies(
        {name: getattr(loaded, name).numpy() for name in VOCABULARY_VARIABLES if hasattr(loaded, name)}
    )
    if carried is not None:
        src, tgt = carried
    elif not any(row.get("synthetic") for row in card["data"].get("sources", [])):
        # Exports that do not carry their vocabularies are older than the back-translation tag
        # being in every source vocabulary: without synthetic pairs, theirs had none.
        src = type(src)(t for t in src.tokens if t != BACK_TRANSLATION_TAG)
    found = tf.raw_ops.LookupTableFindV2(
        table_handle=loaded.source_table.resource_handle,
        keys=tf.constant(src.tokens),
        default_value=tf.constant(-1, tf.int64),
    ).numpy()
    if not (found == np.arange(len(src))).all():
        raise ValueError("the rebuilt source vocabulary does not match the SavedModel's table")
    return src, tgt, target_words, args, test


def _model(loaded, args, src, tgt):
    from training import translate

    model = translate.build_model(args, src, tgt)
    copy_variables(loaded.model_variables, model.weights)
    return model


def _single_sentences(sources: list[str], max_words: int) -> list[str]:
    """The sources an export without sentence splitting translates as today's export does: one
    sentence each, short enough to be one unit."""
    import tensorflow as tf

    from seq2seq_app.core import text

    counts = text.split_sentences(tf.constant(sources)).row_lengths().numpy()
    lengths = text.tokenize(tf.constant(sources)).row_lengths().numpy()
    return [s for s, n, k in zip(sources, counts, lengths) if n == 1 and k <= max_words]


def reexport(export_dir: Path, no_repeat_ngram_size: int, eval_pairs: list[str] = ()) -> dict:
    import tensorflow as tf

    from seq2seq_app.translation.translator_api import LoadedTranslator, export_limits
    from seq2seq_app.translation.translator_export import TranslatorExport
    from training import translate
    from training.cards import write_model_card
    from training.export import safe_export

    card = json.loads((export_dir / "model_card.json").read_text(encoding="utf-8"))
    if card.get("task") != "translate":
        raise ValueError(f"{export_dir} is not a translator (task {card.get('task')!r})")
    eval_sets = _evaluation_sets(card, list(eval_pairs))
    loaded = tf.saved_model.load(str(export_dir))
    src, tgt, target_words, args, test = _vocabularies(loaded, card)
    model = _model(loaded, args, src, tgt)
    # Exports older than the n-gram ban carry no setting and decoded without it.
    old_ngram = getattr(loaded, "decoding_no_repeat_ngram_size", None)
    old_ngram = int(old_ngram.numpy()) if old_ngram is not None else 0
    # Nor did exports older than copying names.
    old_copy_names = getattr(loaded, "decoding_copy_names", None)
    old_copy_names = bool(old_copy_names.numpy()) if old_copy_names is not None else False
    # The model's own caps carry over (exports older than `limits` get the defaults).
    caps = {name: value for name, value in export_limits(loaded).items() if name != "max_output_length"}

    def rebuilt(ngram: int, copy_names: bool = True, float16_storage: bool = True) -> TranslatorExport:
        return TranslatorExport(
            model,
            src,
            tgt,
            args.max_output_length,
            no_repeat_ngram_size=ngram,
            copy_names=copy_names,
            target_words=target_words,
            float16_storage=float16_storage,
            **caps,
        )

    export = rebuilt(no_repeat_ngram_size)
    check = _single_sentences(test.sources, export.max_source_tokens)[:CHECK_SENTENCES]
    if not check:
        raise ValueError("no single-sentence test pair to check the rebuilt model on")
    expected = translate.in_batches(loaded.signatures["translate"], check)
    # The rebuilt model with the old decoding and exact weights must translate word for word as
    # the SavedModel does: that proves the weights and vocabularies carried over.
    # Held in a name: a tf.function method keeps only a weak reference to its object.
    exact = rebuilt(old_ngram, old_copy_names, float16_storage=False)
    if translate.in_batches(exact.translate, check) != expected:
        raise ValueError("the rebuilt model does not reproduce the SavedModel's translations")
    print(f"rebuilt model reproduces the SavedModel on {len(check)} test sentences")
    # What float16 storage is checked against: the exact weights under the new decoding, so a
    # change of decoding setting does not hide a broken float16 export.
    if no_repeat_ngram_size == old_ngram and old_copy_names == export.copy_names:
        reference = expected
    else:
        exact_new = rebuilt(no_repeat_ngram_size, float16_storage=False)
        reference = translate.in_batches(exact_new.translate, check)

    def write(path: Path) -> None:
        export.save(path)
        # Float16 weights may change a few translations; the metrics below are measured on the
        # new SavedModel itself.
        loaded_new = LoadedTranslator(path)  # loaded once: a load costs seconds
        new = loaded_new.translate(check)
        same = sum(a == b for a, b in zip(new, reference))
        print(f"the new SavedModel translates {same} of {len(check)} test sentences as exact weights do")
        if same < MIN_SAME * len(check):
            raise ValueError(
                f"the new export translates only {same} of {len(check)} test sentences as exact weights do"
            )
        sources = card["data"].get("sources", [])  # cards older than mixed sources have none
        card["metrics"].update(translate.card_metrics(loaded_new, test, eval_sets, sources))
        checked = {"same_translations": f"{same} of {len(check)} test sentences"}
        decoding = {"no_repeat_ngram_size": no_repeat_ngram_size, "copy_names": export.copy_names}
        card["export"] = reexport_section(path, card, checked, decoding=decoding)
        write_model_card(path, card)

    safe_export(export_dir, write)
    return card
