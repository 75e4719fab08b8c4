"""Train, evaluate and export a sentiment classifier: `python -m training.sentiment --help`.

Example (the shipped NSMC model; see its model card for the exact command):
    python -m training.sentiment --tsv ../shared/data/nsmc/ratings_train.txt \\
        --text-column document --export-dir saved_models/sentiment_nsmc
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from seq2seq_app.core.vocabulary import Vocabulary
from seq2seq_app.sentiment import data as data
from seq2seq_app.sentiment.review_tokenizer import UNITS, ReviewTokenizer
from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier
from training import flags
from training.env import quiet_tensorflow
from training.task import Run, Task, carve_splits, compiled, run_task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.sentiment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group("data (choose one source)")
    src.add_argument("--tsv", help="tab-separated file with a header row, e.g. NSMC's ratings_train.txt")
    src.add_argument("--text-column", default="document", help="header name of the review column")
    src.add_argument(
        "--label-column", default="label", help="header name of the 0/1 label column (1 = positive)"
    )
    src.add_argument(
        "--tfds", help="TFDS dataset: imdb_reviews (downloads) or nsmc (downloads, or --tfds-manual-dir)"
    )
    src.add_argument("--tfds-text-key", help="text feature (default: document for nsmc, text otherwise)")
    src.add_argument("--tfds-data-dir")
    src.add_argument(
        "--tfds-manual-dir", help="folder with NSMC's ratings_*.txt, to build the nsmc dataset offline"
    )
    src.add_argument("--data-name", default="reviews", help="for the model card, e.g. NSMC")
    src.add_argument("--data-credit", default="", help="data source and licence, for the model card")
    m = parser.add_argument_group("model")
    m.add_argument(
        "--unit", choices=UNITS, default="char", help="text unit (char suits Korean, word English)"
    )
    m.add_argument("--vocab-size", type=flags.positive_int, default=4000)
    m.add_argument("--bigram-vocab-size", type=int, default=30000, help="0 turns bigram features off")
    m.add_argument("--min-count", type=int, default=2, help="rarer units and bigrams are unknown")
    m.add_argument(
        "--max-tokens", type=flags.positive_int, default=200, help="longer reviews keep their first units"
    )
    flags.add_recurrent_flags(m, cell="gru", embedding_dim=128, units=256, dropout=0.3)
    m.add_argument("--layers", type=flags.positive_int, default=1)
    m.add_argument(
        "--bidirectional",
        action="store_true",
        help="read both directions (word-by-word scores then re-read every prefix: slower)",
    )
    m.add_argument(
        "--batch-size", type=flags.positive_int, default=128, help="reviews per batch (per device)"
    )
    flags.add_common_flags(parser, run_dir="runs/sentiment", export_dir="saved_models/sentiment")
    return parser


def load_reviews(args: argparse.Namespace) -> data.LabeledReviews:
    if bool(args.tsv) == bool(args.tfds):
        raise SystemExit("choose exactly one data source: --tsv or --tfds")
    try:
        if args.tsv:
            return data.read_labeled_tsv(args.tsv, args.text_column, args.label_column)
        return data.read_tfds(
            args.tfds, "train", _tfds_text_key(args), args.tfds_data_dir, args.tfds_manual_dir
        )
    except KeyError as e:
        raise SystemExit(
            f"the TFDS dataset has no feature {e}; pass the review's feature with --tfds-text-key"
        ) from e
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the training data: {e}") from e


def _tfds_text_key(args: argparse.Namespace) -> str:
    return args.tfds_text_key or ("document" if args.tfds == "nsmc" else "text")


def _decoded(ragged: tf.RaggedTensor) -> list[list[str]]:
    return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]


def prepare(args: argparse.Namespace, run_dir: Path):
    """Reads and splits the reviews; builds (or, when resuming, reloads) the vocabularies."""
    reviews = load_reviews(args)
    print(f"read {len(reviews)} reviews, skipped {reviews.malformed} malformed rows")
    train, val, test = carve_splits(reviews, data.split_reviews, args, "reviews")
    if len(set(train.labels)) < 2:
        raise SystemExit("the training split has only one label; a classifier needs both 0 and 1")
    vocab_path, bigram_path = run_dir / "vocab.txt", run_dir / "bigram_vocab.txt"
    if vocab_path.exists():
        vocab = Vocabulary.load(vocab_path)
        bigram_vocab = Vocabulary.load(bigram_path) if bigram_path.exists() else None
    else:
        units, bigrams = ReviewTokenizer(Vocabulary([]), None, args.unit, args.max_tokens).split(
            tf.constant(train.texts)
        )
        vocab = Vocabulary.build(_decoded(units), args.vocab_size, args.min_count)
        vocab.save(vocab_path)
        bigram_vocab = None
        if args.bigram_vocab_size:
            bigram_vocab = Vocabulary.build(_decoded(bigrams), args.bigram_vocab_size, args.min_count)
            bigram_vocab.save(bigram_path)
    tokenizer = ReviewTokenizer(vocab, bigram_vocab, args.unit, args.max_tokens)
    stats = {
        "reviews_read": len(reviews),
        "malformed_rows": reviews.malformed,
        "train_reviews": len(train),
        "validation_reviews": len(val),
        "test_reviews": len(test),
        "positive_fraction": round(float(np.mean(reviews.labels)), 3),
        "vocab": len(vocab),
        "bigram_vocab": len(bigram_vocab) if bigram_vocab else 0,
    }
    return (train, val, test), tokenizer, stats


def example_inputs(tokenizer: ReviewTokenizer) -> dict[str, np.ndarray]:
    ids = np.ones((1, 2), np.int32)
    return {"tokens": ids, "bigrams": ids} if tokenizer.bigram_vocab is not None else {"tokens": ids}


def per_review_cross_entropy(labels, logits):
    """Binary cross-entropy of each review ([batch] labels and logits in, [batch] losses out).

    `keras.losses.BinaryCrossentropy` averages a rank-1 batch to one number itself, and Keras then
    skips dividing it by the number of replicas: under `mirrored` or `multi_worker` the reported
    loss and the summed gradients would be N times too large.
    """
    return keras.losses.binary_crossentropy(
        keras.ops.expand_dims(labels, -1), keras.ops.expand_dims(logits, -1), from_logits=True
    )


def build_model(args: argparse.Namespace, tokenizer: ReviewTokenizer) -> SentimentClassifier:
    model = SentimentClassifier(
        vocab_size=len(tokenizer.vocab),
        bigram_vocab_size=len(tokenizer.bigram_vocab) if tokenizer.bigram_vocab else 0,
        embedding_dim=args.embedding_dim,
        units=args.units,
        cell=args.cell,
        num_layers=args.layers,
        bidirectional=args.bidirectional,
        dropout=args.dropout,
        name="sentiment_classifier",
    )
    return compiled(
        model,
        args.learning_rate,
        per_review_cross_entropy,
        [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)],  # threshold on logits
        example_inputs(tokenizer),
    )


def evaluate(classifier, reviews: data.LabeledReviews) -> dict:
    """Accuracy of the exported model's labels on held-out reviews, and its throughput."""
    start = time.time()
    results = classifier.classify(reviews.texts, batch_size=256)
    seconds = time.time() - start
    predicted = np.array([r["label"] == "positive" for r in results])
    accuracy = float(np.mean(predicted == np.array(reviews.labels, bool)))
    scores = {"accuracy": round(100 * accuracy, 2), "reviews": len(reviews), "seconds": round(seconds, 1)}
    print(f"test: {scores}")
    return scores


class SentimentTask(Task):
    """The sentiment classifier's steps of the training skeleton (see training/task.py)."""

    parser = staticmethod(build_parser)
    data_flags = ("tsv", "text_column", "label_column", "tfds", "tfds_text_key")
    architecture_flags = (
        "unit",
        "vocab_size",
        "bigram_vocab_size",
        "min_count",
        "max_tokens",
        "cell",
        "embedding_dim",
        "units",
        "layers",
        "bidirectional",
    )
    signatures = "classify"

    def prepare(self, run: Run) -> None:
        (self.train, self.val, self.test), self.tokenizer, self.stats = prepare(self.args, run.run_dir)

    def build_model(self) -> SentimentClassifier:
        return build_model(self.args, self.tokenizer)

    def example_inputs(self):
        return example_inputs(self.tokenizer)

    def datasets(self, replicas: int):
        batch = self.args.batch_size * replicas
        return (
            data.make_dataset(self.train, self.tokenizer, batch, shuffle=True, seed=self.args.seed),
            data.make_dataset(self.val, self.tokenizer, batch, shuffle=False),
        )

    def exporter(self, model: keras.Model):
        # Imported here, so a finished run can be re-exported by newer export code.
        from seq2seq_app.sentiment.sentiment_export import SentimentExport

        return SentimentExport(model, self.tokenizer).save

    def describe(self, path: Path, run: Run) -> dict:
        from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier

        args, stats, history = self.args, self.stats, run.state["history"] or [{}]
        direction = "bidirectional" if args.bidirectional else "unidirectional"
        return {
            "title": f"{args.data_name} sentiment ({direction} {args.cell.upper()}, {args.unit} units"
            f"{' + bigrams' if self.tokenizer.bigram_vocab else ''})",
            "description": "Many-to-one recurrent classifier: the probability that a review is positive, "
            "and the "
            "score of the review after each unit as it is read. Loads with `tensorflow` alone.",
            "task": "sentiment",
            "data": {
                "source": args.tsv or args.tfds,
                "credit": args.data_credit,
                "text_column": args.text_column if args.tsv else _tfds_text_key(args),
                "label_column": args.label_column,
                "validation_fraction": args.validation_fraction,
                "test_fraction": args.test_fraction,
                "split_seed": args.seed,
                **stats,
            },
            "metrics": {
                "test_split": f"{stats['test_reviews']} reviews carved from the training file "
                f"(seed {args.seed}, texts unseen in training)",
                "test": evaluate(LoadedSentimentClassifier(path), self.test),
                "best_val_accuracy": round(
                    100 * max((h.get("val_accuracy", 0.0) for h in history), default=0.0), 2
                ),
            },
        }


def run(args: argparse.Namespace) -> dict:
    """Everything `main` does, callable from Python and tests; returns the model card."""
    return run_task(SentimentTask(args))


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow()
    run(flags.parse_with_config(build_parser(), argv))


if __name__ == "__main__":
    main()
