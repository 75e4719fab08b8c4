"""Train, evaluate and export a translator: `python -m training.translate --help`.

Example (the word-level Spanish→English model; see its model card for the exact command):
    python -m training.translate --pairs ../shared/data/translation/spa-eng/spa.txt \\
        --source-column 1 --target-column 0 --export-dir saved_models/translate_spa_en_word

Subwords from several weighted sources with tagged back-translation (see docs/translation.md):
    python -m training.translate --text-unit subword --pairs spa.txt --aligned 'news/news2008*3' \\
        --synthetic-pairs 'back_translated.tsv*0.5' --export-dir saved_models/translate_mixed
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.core import metrics
from seq2seq_app.core.subword_vocabulary import SubwordVocabulary
from seq2seq_app.core.text import tokenize_all
from seq2seq_app.core.vocabulary import RESERVED, Vocabulary
from seq2seq_app.translation import data as data
from seq2seq_app.translation.data_source import (
    BACK_TRANSLATION_TAG,
    DataSource,
    oversampled,
    per_source_tests,
    split_mixture,
)
from seq2seq_app.translation.name_swap import swap_names
from seq2seq_app.translation.translator import Translator
from training import flags
from training.callbacks import ValidationBleu, backup_path, best_weights_path
from training.cards import card_args
from training.env import quiet_tensorflow
from training.export import float32_copy
from training.reexport.weights import copy_variables, read_export
from training.task import Run, Task, compiled, require_nonempty, run_task

AnyVocabulary = Vocabulary | SubwordVocabulary
# What the card of a run started with --init-from keeps of the export's own `training` section.
INITIAL_RECORD = ("command", "epochs", "train_seconds", "initialized_from")
VOCABULARIES = {"word": Vocabulary, "subword": SubwordVocabulary}
UNIT_DESCRIPTIONS = {
    "word": "word-level vocabularies with unknown words copied from the source.",
    "subword": "byte-pair subword pieces segmented in the graph (open vocabulary), joined back to words.",
}


# Written by `prepare` into the run directory: the words the export counts as the target side's own.
TARGET_WORDS_FILE = "target_words.txt"
# A bound on the export's size (about 10 bytes a word); the shipped data has some 23,000.
TARGET_WORDS = 200_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.translate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group(
        "data",
        "training pairs from one or more sources: any mix of --pairs, --synthetic-pairs, --aligned\n"
        "(each repeatable) and --source-file/--target-file, or --tfds alone. WEIGHT oversamples a\n"
        "source (news*3: three copies an epoch; 0.5: a seeded half); quote a spec holding * in the\n"
        "shell. Validation and test pairs are carved from every genuine source, never synthetic.",
    )
    src.add_argument(
        "--pairs",
        action="append",
        default=[],
        metavar="PATH[*WEIGHT]",
        help="tab-separated pair file, e.g. Tatoeba's English<TAB>other (repeatable)",
    )
    src.add_argument(
        "--synthetic-pairs",
        action="append",
        default=[],
        metavar="PATH[*WEIGHT]",
        help="back-translated pair file, same columns as --pairs (repeatable): its sources get a "
        f"{BACK_TRANSLATION_TAG} tag token and none of its pairs go into validation or test",
    )
    src.add_argument(
        "--aligned",
        action="append",
        default=[],
        metavar="PREFIX[*WEIGHT]",
        help="line-aligned files PREFIX.<suffix>, suffixes named by --eval-suffixes (repeatable)",
    )
    src.add_argument(
        "--source-column", type=int, default=1, help="column of the source language in pair files"
    )
    src.add_argument(
        "--target-column", type=int, default=0, help="column of the target language in pair files"
    )
    src.add_argument(
        "--name-swaps",
        type=flags.non_negative_float,
        default=0.0,
        metavar="WEIGHT",
        help="add copies of the genuine training pairs that carry a name, each name swapped for "
        "another of the corpus's names on both sides: WEIGHT copies a pair, times its source's "
        "weight (0.5: a seeded half; default 0: none); teaches the model to carry names it never saw",
    )
    src.add_argument("--source-file", help="line-aligned source file (with --target-file)")
    src.add_argument("--target-file", help="line-aligned target file (with --source-file)")
    src.add_argument("--tfds", help="TFDS dataset name, e.g. ted_hrlr_translate/pt_to_en (downloads)")
    src.add_argument("--tfds-source-key", default="pt")
    src.add_argument("--tfds-target-key", default="en")
    src.add_argument("--tfds-data-dir")
    src.add_argument("--source-name", default="source language", help="for the model card, e.g. Spanish")
    src.add_argument("--target-name", default="target language", help="for the model card, e.g. English")
    src.add_argument("--data-credit", default="", help="data source and licence, for the model card")
    src.add_argument(
        "--eval-pairs",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an extra evaluation set (repeatable): a pair file read with --source-column/--target-column, "
        "or the prefix of line-aligned files PATH.<suffix> named by --eval-suffixes",
    )
    src.add_argument(
        "--eval-suffixes",
        default="es,en",
        help="source,target suffixes of line-aligned files (--aligned and --eval-pairs)",
    )
    m = parser.add_argument_group("model")
    flags.add_recurrent_flags(m, cell="gru", embedding_dim=256, units=320, dropout=0.2)
    m.add_argument("--encoder-layers", type=flags.positive_int, default=1)
    flags.add_decoder_flags(m)
    m.add_argument(
        "--text-unit",
        choices=["word", "subword"],
        default="word",
        help="word: word vocabularies, unknown words copied from the source; subword: byte-pair "
        "pieces (open vocabulary, see docs/translation.md), vocabulary sizes and lengths count pieces",
    )
    m.add_argument("--source-vocab-size", type=flags.positive_int, default=16000, help="words or pieces")
    m.add_argument("--target-vocab-size", type=flags.positive_int, default=10000, help="words or pieces")
    m.add_argument(
        "--min-count",
        type=int,
        default=2,
        help="rarer words are unknown and copied from the source (word), or not learned from (subword)",
    )
    m.add_argument(
        "--max-length",
        type=flags.positive_int,
        default=50,
        help="longest training pair in tokens (words or pieces)",
    )
    # Many small updates first: from scratch, a GRU translator sits at the unigram plateau (every
    # step predicts the commonest tokens) until enough updates have passed, and with 4,096-token
    # batches a subword run had not left it after 1,162 (see docs/translation.md).
    m.add_argument(
        "--tokens-per-batch",
        type=flags.positive_int,
        default=1024,
        help="target tokens per batch (per replica); larger batches run faster per token but "
        "take longer to start learning",
    )
    m.add_argument(
        "--max-output-length", type=flags.positive_int, default=100, help="decoding cap in the export"
    )
    m.add_argument(
        "--init-from",
        metavar="SAVEDMODEL",
        help="start from the weights and vocabularies of a translator this CLI exported with the same "
        "model flags, e.g. to carry a run that outlives its run directory on in a new one",
    )
    m.add_argument(
        "--val-bleu-sentences",
        type=flags.non_negative_int,
        default=500,
        help="validation sentences translated (greedy) after every epoch; their BLEU and chrF are "
        "logged as val_bleu and val_chrf (0: off)",
    )
    flags.add_common_flags(parser, run_dir="runs/translate", export_dir="saved_models/translate")
    return parser


def load_sources(args: argparse.Namespace) -> list[tuple[DataSource, data.ParallelCorpus]]:
    """Every training source the flags name, read."""
    files = bool(args.source_file or args.target_file)
    if not (args.pairs or args.synthetic_pairs or args.aligned or files or args.tfds) or (
        args.tfds and (args.pairs or args.synthetic_pairs or args.aligned or files)
    ):
        raise SystemExit(
            "choose the training data: any mix of --pairs, --aligned, --source-file/--target-file and "
            "--synthetic-pairs, or --tfds alone"
        )
    if files and not (args.source_file and args.target_file):
        raise SystemExit("--source-file and --target-file go together")
    if args.tfds:
        corpus = data.read_tfds(
            args.tfds, "train", args.tfds_source_key, args.tfds_target_key, args.tfds_data_dir
        )
        return [(DataSource(args.tfds), corpus)]
    suffixes = eval_suffixes(args)
    specs = [
        *[(spec, "--pairs", None, False) for spec in args.pairs],
        *[(spec, "--aligned", suffixes, False) for spec in args.aligned],
        *[(spec, "--synthetic-pairs", None, True) for spec in args.synthetic_pairs],
    ]
    sources = [DataSource(args.source_file, args.target_file)] if files else []
    for spec, flag, aligned, synthetic in specs:
        try:
            sources.append(DataSource.parse(spec, aligned, synthetic))
        except ValueError as e:
            raise SystemExit(f"{flag} {e}") from e
    if all(source.synthetic for source in sources):
        raise SystemExit("--synthetic-pairs need a genuine source to carve validation and test pairs from")
    return [(source, source.read(args.source_column, args.target_column)) for source in sources]


def args_from_card(card: dict) -> argparse.Namespace:
    """The flags a model card's training command ran with (a --config file read as the CLI does)."""
    return card_args(card, build_parser(), "training.translate")


def export_vocabularies(values: Mapping[str, object]) -> tuple[AnyVocabulary, AnyVocabulary] | None:
    """The source and target vocabularies in a translator export's variables (`values`: name →
    value), or None for exports older than carrying them; exports without a `text_unit` are
    word-level."""
    if "source_vocabulary" not in values:
        return None
    unit = values["text_unit"].decode() if "text_unit" in values else "word"
    kind = VOCABULARIES[unit]
    return (
        kind(t.decode() for t in values["source_vocabulary"]),
        kind(t.decode() for t in values["target_vocabulary"]),
    )


def read_initial(args: argparse.Namespace) -> tuple[tuple[AnyVocabulary, AnyVocabulary], list, dict]:
    """(vocabularies, weights, the record of how they were trained) of the `--init-from` export."""
    path = Path(args.init_from).resolve()
    if not (path / "saved_model.pb").exists():
        raise SystemExit(f"--init-from {args.init_from}: no SavedModel there")
    named, weights = read_export(path)
    vocabularies = export_vocabularies(named)
    if vocabularies is None or not weights:
        raise SystemExit(
            f"--init-from {args.init_from}: an export too old to carry its vocabularies and weights"
        )
    if not isinstance(vocabularies[0], VOCABULARIES[args.text_unit]):
        raise SystemExit(f"--init-from {args.init_from}: not a --text-unit {args.text_unit} model")
    card_path = path / "model_card.json"
    before = (
        json.loads(card_path.read_text(encoding="utf-8")).get("training", {}) if card_path.exists() else {}
    )
    # The chain of runs back to the one that started from scratch, each with its command.
    record = {"path": str(path), **{k: before[k] for k in INITIAL_RECORD if k in before}}
    return vocabularies, weights, record


def prepare(
    args: argparse.Namespace, run_dir: Path, initial: tuple[AnyVocabulary, AnyVocabulary] | None = None
):
    """Reads, splits, tokenises and weights the sources; builds (or, when resuming, reloads)
    vocabularies, or takes the `initial` ones (`--init-from`'s)."""
    try:
        sources = load_sources(args)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the training data: {e}") from e
    for source, corpus in sources:
        print(f"{source.describe()}: read {len(corpus)} pairs, skipped {corpus.malformed} malformed lines")
    genuine = sum(len(corpus) for source, corpus in sources if not source.synthetic)
    if genuine < 10:
        raise SystemExit(f"only {genuine} usable pairs: too few to train on")
    try:
        trains, val, test, report = split_mixture(
            sources, args.validation_fraction, args.test_fraction, args.seed
        )
    except ValueError as e:
        raise SystemExit(str(e)) from e
    require_nonempty(
        [[s for train in trains for s in train.sources], val, test],
        "adjust --validation-fraction/--test-fraction or add data",
    )
    src_tokens, tgt_tokens, is_genuine = [], [], []
    for (source, _), train in zip(sources, trains):
        source_tokens = tokenize_all(train.sources, lowercase=True)
        target_tokens = tokenize_all(train.targets, lowercase=False)
        if source.synthetic:
            source_tokens = [[BACK_TRANSLATION_TAG, *tokens] for tokens in source_tokens]
        for i in oversampled(len(train), source.weight, args.seed):
            src_tokens.append(source_tokens[i])
            tgt_tokens.append(target_tokens[i])
            is_genuine.append(not source.synthetic)
    truecase = data.Truecaser(tgt_tokens)
    tgt_tokens = [truecase(t) for t in tgt_tokens]
    # The target side's words (lowercased, counted as weighted), for the export to tell a name the
    # model spelled out piece by piece from a word it knows (`TranslatorExport._names_copied`);
    # swapped names left out. Kept once written, as the vocabularies are, so a resumed run (and
    # every worker of a multi-worker one) reads the same file.
    if not (run_dir / TARGET_WORDS_FILE).exists():
        Vocabulary.build(
            ([word.lower() for word in tokens] for tokens in tgt_tokens), max_size=TARGET_WORDS, min_count=2
        ).save(run_dir / TARGET_WORDS_FILE)
    # Swapped after truecasing, which keeps names capitalised and lowercases other sentence starts.
    swapped_sources, swapped_targets = swap_names(
        [t for t, g in zip(src_tokens, is_genuine) if g],
        [t for t, g in zip(tgt_tokens, is_genuine) if g],
        args.name_swaps,
        args.seed,
        held_out=[*val.sources, *test.sources],
    )
    src_tokens += swapped_sources
    tgt_tokens += swapped_targets
    src_path, tgt_path = run_dir / "source_vocab.txt", run_dir / "target_vocab.txt"
    if src_path.exists() and tgt_path.exists():
        kind = VOCABULARIES[args.text_unit]
        src_vocab, tgt_vocab = kind.load(src_path), kind.load(tgt_path)
    elif initial is not None:
        src_vocab, tgt_vocab = initial
        if any(source.synthetic for source, _ in sources) and BACK_TRANSLATION_TAG not in src_vocab.tokens:
            raise SystemExit(
                f"--init-from's source vocabulary has no {BACK_TRANSLATION_TAG} tag for --synthetic-pairs"
            )
        src_vocab.save(src_path)
        tgt_vocab.save(tgt_path)
    else:
        tagged = any(source.synthetic for source, _ in sources)
        untagged = (
            [[t for t in tokens if t != BACK_TRANSLATION_TAG] for tokens in src_tokens]
            if tagged
            else src_tokens
        )
        src_vocab, tgt_vocab = build_vocabularies(args, untagged, tgt_tokens)
        # The tag is one token (one piece), whatever its count, and every new source vocabulary
        # has it: a model trained without back-translated pairs can go on with them (--init-from).
        src_vocab = type(src_vocab)([BACK_TRANSLATION_TAG, *src_vocab.tokens[len(RESERVED) :]])
        src_vocab.save(src_path)
        tgt_vocab.save(tgt_path)

    def encode(name: str, source_tokens, target_tokens):
        s_ids, t_ids, dropped = data.encode_pairs(
            source_tokens, target_tokens, src_vocab, tgt_vocab, args.max_length
        )
        print(f"{name}: {len(s_ids)} pairs ({dropped} longer than {args.max_length} tokens left out)")
        return s_ids, t_ids

    splits = {
        "train": encode("train", src_tokens, tgt_tokens),
        "validation": encode(
            "validation",
            tokenize_all(val.sources, lowercase=True),
            [truecase(t) for t in tokenize_all(val.targets, lowercase=False)],
        ),
    }
    stats = {
        "text_unit": args.text_unit,
        "pairs_read": sum(len(corpus) for _, corpus in sources),
        "malformed_lines": sum(corpus.malformed for _, corpus in sources),
        "sources": report,
        "name_swapped_pairs": len(swapped_sources),
        "train_pairs": len(splits["train"][0]),
        "validation_pairs": len(splits["validation"][0]),
        "test_pairs": len(test),
        "source_vocab": len(src_vocab),
        "target_vocab": len(tgt_vocab),
        "train_target_tokens": int(sum(len(t) - 1 for t in splits["train"][1])),
    }
    return splits, val, test, src_vocab, tgt_vocab, stats


def build_vocabularies(
    args: argparse.Namespace, src_tokens: list[list[str]], tgt_tokens: list[list[str]]
) -> tuple[AnyVocabulary, AnyVocabulary]:
    """Source and target vocabularies of the run's text unit, from the training tokens."""
    if args.text_unit == "subword":
        return (
            SubwordVocabulary.learn(src_tokens, args.source_vocab_size, args.min_count),
            SubwordVocabulary.learn(tgt_tokens, args.target_vocab_size, args.min_count),
        )
    return (
        Vocabulary.build(src_tokens, args.source_vocab_size, args.min_count),
        Vocabulary.build(tgt_tokens, args.target_vocab_size, args.min_count),
    )


def build_model(args: argparse.Namespace, src_vocab: AnyVocabulary, tgt_vocab: AnyVocabulary) -> Translator:
    model = Translator(
        source_vocab_size=len(src_vocab),
        target_vocab_size=len(tgt_vocab),
        embedding_dim=args.embedding_dim,
        units=args.units,
        cell=args.cell,
        encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers,
        attention=args.attention,
        dropout=args.dropout,
        name="translator",
    )
    return compiled(
        model,
        args.learning_rate,
        metrics.masked_cross_entropy,
        [metrics.masked_accuracy],
        example_inputs(),
    )


def example_inputs() -> dict[str, np.ndarray]:
    dummy = np.ones((1, 2), np.int32)
    return {"source": dummy, "target_in": dummy}


def evaluate(translator, test: data.ParallelCorpus, beam_size: int = 4, name: str = "test") -> dict:
    """BLEU, chrF, loop rate and names kept of greedy and beam outputs against the raw
    references."""
    results = {}
    for decoding, kwargs in [("greedy", {}), (f"beam{beam_size}", {"beam_size": beam_size})]:
        start = time.time()
        hyps = translator.translate(test.sources, batch_size=256, **kwargs)
        scores = metrics.corpus_scores(hyps, [test.targets])
        scores["loop_rate"] = metrics.loop_rate(hyps, test.targets)
        scores["names_kept"] = metrics.names_kept(test.sources, hyps, test.targets)
        scores["seconds"] = round(time.time() - start, 1)
        results[decoding] = scores
        print(f"{name} {decoding}: {scores}")
    return results


def eval_suffixes(args: argparse.Namespace) -> tuple[str, str]:
    """The source and target suffixes of line-aligned files."""
    suffixes = args.eval_suffixes.split(",")
    if len(suffixes) != 2 or not all(suffixes):
        raise SystemExit(f"--eval-suffixes wants two suffixes like es,en, got {args.eval_suffixes!r}")
    return suffixes[0], suffixes[1]


def in_batches(translate: Callable, sentences: list[str], batch_size: int = 64) -> list[str]:
    """`sentences` through a `translate` signature (or the export's method of that name), a batch
    at a time."""
    out: list[str] = []
    for i in range(0, len(sentences), batch_size):
        batch = translate(text=tf.constant(sentences[i : i + batch_size]))["translation"]
        out += [t.decode() for t in batch.numpy()]
    return out


def card_metrics(
    translator, test: data.ParallelCorpus, eval_sets: dict[str, data.ParallelCorpus], sources: list[dict]
) -> dict:
    """The card's metrics: the test split, each `--eval-pairs` set and, when several genuine sources
    were mixed, each source's own test pairs (`per_source_tests`)."""
    results = evaluate(translator, test)
    for name, corpus in eval_sets.items():
        results[name] = {"pairs": len(corpus), **evaluate(translator, corpus, name=name)}
    if sum(not row["synthetic"] for row in sources) > 1:
        results["test_by_source"] = [
            {"source": name, "pairs": len(part), **evaluate(translator, part, name=name)}
            for name, part in per_source_tests(test, sources)
        ]
    return results


def read_eval_sets(args: argparse.Namespace) -> dict[str, data.ParallelCorpus]:
    """The `--eval-pairs NAME=PATH` sets: pair files, or prefixes of aligned files."""
    suffixes = eval_suffixes(args)
    sets = {}
    for spec in args.eval_pairs:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise SystemExit(f"--eval-pairs wants NAME=PATH, got {spec!r}")
        try:
            if Path(path).is_file():
                sets[name] = data.read_pair_file(path, args.source_column, args.target_column)
            else:
                sets[name] = data.read_aligned_files(f"{path}.{suffixes[0]}", f"{path}.{suffixes[1]}")
        except (OSError, ValueError) as e:
            raise SystemExit(f"cannot read --eval-pairs {name}: {e}") from e
        if not len(sets[name]):
            raise SystemExit(f"--eval-pairs {name} has no usable pairs")
    return sets


class TranslateTask(Task):
    """The translator's steps of the training skeleton (see training/task.py)."""

    parser = staticmethod(build_parser)
    data_flags = (
        "pairs",
        "synthetic_pairs",
        "aligned",
        "source_column",
        "target_column",
        "source_file",
        "target_file",
        "tfds",
        "tfds_source_key",
        "tfds_target_key",
        "name_swaps",
    )
    architecture_flags = (
        "cell",
        "embedding_dim",
        "units",
        "encoder_layers",
        "decoder_layers",
        "attention",
        "text_unit",
        "source_vocab_size",
        "target_vocab_size",
        "min_count",
        "max_length",
        # Not architecture, but it defines the run (its starting weights) and belongs in the card.
        "init_from",
    )
    batch_flag = "tokens_per_batch"
    signatures = "translate, translate_beam, translate_sample"

    def prepare(self, run: Run) -> None:
        self.eval_sets = read_eval_sets(self.args)  # first, so a typo fails before any training
        self.record_path = run.run_dir / "initialized_from.json"
        self.initial_weights, vocabularies = None, None
        # Read only while the run has no weights of its own: a resumed run goes on from its backup,
        # even if the export has since moved or been replaced.
        if self.args.init_from and not any(
            p.exists() for p in (backup_path(run.run_dir), best_weights_path(run.run_dir))
        ):
            vocabularies, self.initial_weights, record = read_initial(self.args)
            if run.worker.is_chief:
                self.record_path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        self.splits, self.val, self.test, self.src_vocab, self.tgt_vocab, self.stats = prepare(
            self.args, run.run_dir, vocabularies
        )
        self.target_words = Vocabulary.load(run.run_dir / TARGET_WORDS_FILE)

    def build_model(self) -> Translator:
        model = build_model(self.args, self.src_vocab, self.tgt_vocab)
        if self.initial_weights is not None:
            try:
                copy_variables(self.initial_weights, model.weights)
            except ValueError as e:
                raise SystemExit(
                    f"--init-from {self.args.init_from} does not fit the model flags: {e}"
                ) from e
        return model

    def training_record(self) -> dict:
        if not self.record_path.exists():
            return {}
        return {"initialized_from": json.loads(self.record_path.read_text(encoding="utf-8"))}

    def example_inputs(self):
        return example_inputs()

    def datasets(self, replicas: int):
        args, tokens = self.args, self.args.tokens_per_batch * replicas
        return (
            data.make_dataset(*self.splits["train"], tokens, args.max_length, shuffle=True, seed=args.seed),
            data.make_dataset(*self.splits["validation"], tokens, args.max_length, shuffle=False),
        )

    def exporter(self, model: keras.Model):
        # Imported here, so a finished run can be re-exported by newer export code.
        from seq2seq_app.translation.translator_export import TranslatorExport

        return TranslatorExport(
            model,
            self.src_vocab,
            self.tgt_vocab,
            self.args.max_output_length,
            target_words=self.target_words,
        ).save

    def epoch_callbacks(self, model: keras.Model) -> list[keras.callbacks.Callback]:
        n = self.args.val_bleu_sentences
        if n <= 0:
            return []
        # Evenly spaced, so every source of a mixture has its share (the split lists them in turn).
        picked = [i * len(self.val) // n for i in range(min(n, len(self.val)))]
        sources, targets = [self.val.sources[i] for i in picked], [self.val.targets[i] for i in picked]
        return [ValidationBleu(self.greedy_now(model), sources, targets)]

    def greedy_now(self, model: keras.Model) -> Callable[[list[str]], list[str]]:
        """Greedy translation with `model`'s current weights through the export's own text handling:
        a float32 twin and its export (float32 storage) take them on each call, so the export is
        traced only once."""
        from seq2seq_app.translation.translator_export import TranslatorExport

        policy = keras.mixed_precision.global_policy()
        try:
            twin = float32_copy(model, self.example_inputs())
        finally:
            keras.mixed_precision.set_global_policy(policy)  # the run trains on in its own precision
        export = TranslatorExport(
            twin,
            self.src_vocab,
            self.tgt_vocab,
            self.args.max_output_length,
            target_words=self.target_words,
            float16_storage=False,
        )

        def translate(sentences: list[str]) -> list[str]:
            twin.set_weights(model.get_weights())
            export.refresh_weights()
            return in_batches(export.translate, sentences)

        return translate

    def describe(self, path: Path, run: Run) -> dict:
        from seq2seq_app.translation.translator_api import LoadedTranslator

        args, stats = self.args, self.stats
        results = card_metrics(LoadedTranslator(path), self.test, self.eval_sets, stats["sources"])
        return {
            "title": f"{args.source_name} → {args.target_name} translator "
            f"({args.cell.upper()} encoder–decoder with {args.attention} attention)",
            "description": "Bidirectional recurrent encoder, attention decoder, "
            + UNIT_DESCRIPTIONS[args.text_unit]
            + " Loads with `tensorflow` alone.",
            "task": "translate",
            "data": {
                "source": "; ".join(row["source"] for row in stats["sources"]),
                "credit": args.data_credit,
                "validation_fraction": args.validation_fraction,
                "test_fraction": args.test_fraction,
                "split_seed": args.seed,
                **stats,
            },
            "metrics": {
                "test_split": f"{stats['test_pairs']} pairs carved from the genuine training sources "
                f"(seed {args.seed}, source sentences unseen in training)",
                **results,
            },
        }


def run(args: argparse.Namespace) -> dict:
    """Everything `main` does, callable from Python and tests; returns the model card."""
    return run_task(TranslateTask(args))


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow()
    run(flags.parse_with_config(build_parser(), argv))


if __name__ == "__main__":
    main()
