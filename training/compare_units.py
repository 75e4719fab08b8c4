"""Which text unit reads Korean reviews best? `python -m training.compare_units --help`.

Trains the sentiment classifier for a few epochs per unit on the same grouped split of the NSMC
training file and prints the validation accuracy after each epoch. The choice of unit in
`seq2seq_app/review_tokenizer.py` rests on its output, e.g.:

    python -m training.compare_units --unit char --bigram-vocab-size 30000
    python -m training.compare_units --unit char --bigram-vocab-size 0
    python -m training.compare_units --unit word --vocab-size 30000 --bigram-vocab-size 0
    python -m training.compare_units --unit char --bigram-vocab-size 30000 --bidirectional
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import keras
import tensorflow as tf

from seq2seq_app.core.vocabulary import Vocabulary
from seq2seq_app.sentiment import data as data
from seq2seq_app.sentiment.review_tokenizer import UNITS, ReviewTokenizer, split_units
from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier
from training.env import quiet_tensorflow
from training.sentiment import example_inputs, per_review_cross_entropy
from training.strategy import configure_precision
from training.task import compiled


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.compare_units",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tsv", default="../shared/data/nsmc/ratings_train.txt")
    parser.add_argument("--unit", choices=UNITS, default="char")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--bigram-vocab-size", type=int, default=30000)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    quiet_tensorflow()
    keras.utils.set_random_seed(0)
    configure_precision("auto")
    reviews = data.read_labeled_tsv(args.tsv, "document", "label")
    train, val, _ = data.split_reviews(reviews, 0.05, 0.0, 0)
    units, bigrams = split_units(tf.constant(train.texts), args.unit)
    decoded = [[[t.decode() for t in row] for row in r.to_list()] for r in (units, bigrams)]
    vocab = Vocabulary.build(decoded[0], args.vocab_size, 2)
    bigram_vocab = Vocabulary.build(decoded[1], args.bigram_vocab_size, 2) if args.bigram_vocab_size else None
    tokenizer = ReviewTokenizer(vocab, bigram_vocab, args.unit, 200)
    model = SentimentClassifier(
        len(vocab), len(bigram_vocab) if bigram_vocab else 0, 128, 256, "gru", 1, args.bidirectional, 0.3
    )
    compiled(
        model,
        1e-3,
        per_review_cross_entropy,
        [keras.metrics.BinaryAccuracy(threshold=0.0)],
        example_inputs(tokenizer),
    )
    start = time.time()
    history = model.fit(
        data.make_dataset(train, tokenizer, 128, True, 0),
        epochs=args.epochs,
        verbose=2,
        validation_data=data.make_dataset(val, tokenizer, 256, False),
    )
    print(
        json.dumps(
            {
                "unit": args.unit,
                "bigrams": args.bigram_vocab_size,
                "bidirectional": args.bidirectional,
                "val_accuracy": history.history["val_binary_accuracy"],
                "seconds": round(time.time() - start),
                "parameters": model.count_params(),
            }
        )
    )


if __name__ == "__main__":
    main()
