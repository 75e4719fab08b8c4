"""A shipped sentiment classifier re-exported through today's export code, without its training run.

The vocabularies come from the SavedModel's own lookup tables, the weights from its variables
(`model_variables`, in the order the export saved them), the flags from its card's training
command. The rebuilt model, with its exact weights, must score the card's test reviews as the
SavedModel does; the new export's test accuracy is then measured again for the card, and the old
folder is replaced only when the new export is complete (`safe_export`).

Example:
    python -m training.reexport saved_models/sentiment_nsmc
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.vocabulary import Vocabulary
from seq2seq_app.sentiment import data
from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer
from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier
from seq2seq_app.sentiment.sentiment_export import SentimentExport
from training import sentiment
from training.cards import card_args, write_model_card
from training.export import safe_export
from training.reexport.weights import copy_variables, reexport_section
from training.task import carve_splits

CHECK_REVIEWS = 300
TOLERANCE = 1e-5  # the same graph on the same weights: only the order of float sums may differ
# Float16 storage moves scores by about 1e-4; more than this is a broken export, which then never
# replaces the user's model.
MIN_SAME = 0.98
MAX_SCORE_CHANGE = 0.01


def table_vocabulary(table) -> Vocabulary:
    """The vocabulary behind a loaded token → id lookup table (every id 0 … n-1 once)."""
    keys, ids = tf.raw_ops.LookupTableExportV2(
        table_handle=table.resource_handle, Tkeys=tf.string, Tvalues=tf.int64
    )
    order = np.argsort(ids.numpy())
    if not (ids.numpy()[order] == np.arange(len(order))).all():
        raise ValueError("the SavedModel's lookup table does not number its tokens 0 … n-1")
    return Vocabulary(key.decode("utf-8") for key in keys.numpy()[order])


def _scores(classify, texts: list[str]) -> np.ndarray:
    return np.concatenate(
        [classify(text=tf.constant(texts[i : i + 64]))["score"].numpy() for i in range(0, len(texts), 64)]
    )


def reexport(folder: str | Path) -> dict:
    """Re-exports the sentiment classifier in `folder` in place; returns its updated model card.

    Raises:
        ValueError: the card is not a sentiment classifier's, a variable does not match, or the
            rebuilt model scores differently; the folder is then left as it was.
    """
    folder = Path(folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    if card.get("task") != "sentiment":
        raise ValueError(f"{folder} is not a sentiment classifier (task {card.get('task')!r})")
    args = card_args(card, sentiment.build_parser(), "training.sentiment")
    loaded = tf.saved_model.load(str(folder))
    vocab, *bigrams = [table_vocabulary(table) for table in loaded.tables]
    tokenizer = ReviewTokenizer(vocab, bigrams[0] if bigrams else None, args.unit, args.max_tokens)
    model = sentiment.build_model(args, tokenizer)
    copy_variables(loaded.model_variables, model.weights)
    _, _, test = carve_splits(sentiment.load_reviews(args), data.split_reviews, args, "reviews")
    check = test.texts[:CHECK_REVIEWS]
    expected = _scores(loaded.signatures["classify"], check)
    exact = SentimentExport(model, tokenizer, float16_storage=False)
    if not np.allclose(_scores(exact.classify, check), expected, atol=TOLERANCE):
        raise ValueError("the rebuilt model does not reproduce the SavedModel's scores")
    print(f"rebuilt model reproduces the SavedModel on {len(check)} test reviews")
    export = SentimentExport(model, tokenizer)

    def write(path: Path) -> None:
        export.save(path)
        new = _scores(tf.saved_model.load(str(path)).signatures["classify"], check)
        same = int(np.sum((new >= 0.5) == (expected >= 0.5)))
        print(f"the new SavedModel labels {same} of {len(check)} test reviews as the old one did")
        if same < MIN_SAME * len(check) or np.abs(new - expected).max() > MAX_SCORE_CHANGE:
            raise ValueError(f"the new export scores differently: {same} of {len(check)} labels the same")
        card["metrics"]["test"] = sentiment.evaluate(LoadedSentimentClassifier(path), test)
        checked = {
            "same_labels": f"{same} of {len(check)} test reviews",
            "largest_score_change": round(float(np.abs(new - expected).max()), 5),
        }
        card["export"] = reexport_section(path, card, checked)
        write_model_card(path, card)

    safe_export(folder, write)
    return card
