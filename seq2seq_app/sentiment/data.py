"""Labelled reviews for sentiment: reading (TSV files, TFDS), splitting and tf.data pipelines."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import tensorflow as tf

from seq2seq_app.core.batching import bucket_boundaries
from seq2seq_app.core.splits import grouped_split
from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer


@dataclasses.dataclass
class LabeledReviews:
    """Reviews with 0/1 labels (1 = positive) and a count of rows that could not be used."""

    texts: list[str]
    labels: list[int]
    malformed: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int]) -> LabeledReviews:
        return LabeledReviews([self.texts[i] for i in index], [self.labels[i] for i in index])


def _collect(rows: Iterable[tuple[object, object] | None]) -> LabeledReviews:
    """Keeps (text, label) rows with non-empty text and a 0/1 label; counts the rest as malformed."""
    texts, labels, malformed = [], [], 0
    for row in rows:
        text, label = row if row is not None else ("", None)
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                text = ""
        label = str(label.decode() if isinstance(label, bytes) else label).strip()
        if not str(text).strip() or label not in ("0", "1"):
            malformed += 1
            continue
        texts.append(str(text).strip())
        labels.append(int(label))
    return LabeledReviews(texts, labels, malformed)


def read_labeled_tsv(path: str | Path, text_column: str, label_column: str) -> LabeledReviews:
    """Reads a tab-separated file with a header row, e.g. NSMC's `id document label`.

    Fields may be double-quoted with `""` escapes (NSMC and the IMDB export both use this). Each
    line is parsed on its own, so one stray quote spoils one row, never the rest of the file.
    Rows with a missing column, empty text, a label other than 0/1 or invalid UTF-8 are counted
    as malformed and skipped.

    Args:
        path: the file.
        text_column: header name of the review column (NSMC: `document`, IMDB: `text`).
        label_column: header name of the 0/1 label column.

    Example:
    >>> path = "../shared/data/nsmc/ratings_train.txt"
    >>> reviews = read_labeled_tsv(path, "document", "label")  # doctest: +SKIP
    """
    with open(path, "rb") as f:
        raw_lines = f.read().splitlines()
    if not raw_lines:
        raise ValueError(f"{path} is empty; expected a header row with {text_column!r} and {label_column!r}")
    header = raw_lines[0].decode("utf-8-sig", errors="replace").split("\t")
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise ValueError(f"{path} has no column {missing[0]!r}; its header is {header}")
    ti, li = header.index(text_column), header.index(label_column)

    def rows():
        for raw in raw_lines[1:]:
            try:
                fields = next(csv.reader([raw.decode("utf-8")], delimiter="\t"))
            except (UnicodeDecodeError, csv.Error, StopIteration):
                yield None
                continue
            yield (fields[ti], fields[li]) if len(fields) > max(ti, li) else None

    return _collect(rows())


def read_tfds(
    name: str, split: str, text_key: str = "text", data_dir=None, manual_dir=None
) -> LabeledReviews:
    """Reads a TFDS review dataset with a 0/1 `label`: `imdb_reviews` (downloads), or `nsmc`
    (this project's builder: downloads, or reads the files in `manual_dir` offline)."""
    import tensorflow_datasets as tfds

    if name == "nsmc":
        from seq2seq_app.sentiment.nsmc_builder import Nsmc

        builder = Nsmc(data_dir=data_dir)
        config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
        builder.download_and_prepare(download_config=config)
        dataset = builder.as_dataset(split=split)
    else:
        dataset = tfds.load(name, split=split, data_dir=data_dir)
    return _collect((ex[text_key], ex["label"]) for ex in tfds.as_numpy(dataset))


def split_reviews(
    reviews: LabeledReviews, validation: float, test: float, seed: int = 0
) -> tuple[LabeledReviews, LabeledReviews, LabeledReviews]:
    """Training, validation and test splits; every copy of a review text lands in one split."""
    return tuple(reviews.subset(p) for p in grouped_split(reviews.texts, validation, test, seed))  # type: ignore[return-value]


def make_dataset(
    reviews: LabeledReviews,
    tokenizer: ReviewTokenizer,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Length-bucketed batches of `({"tokens"[, "bigrams"]}, label)`.

    Reviews are tokenised once by the same in-graph `ReviewTokenizer` the export uses and
    cached; reviews of similar length are batched together so little time goes to padding.
    Reviews with no units at all (e.g. only spaces) are left out.
    """
    texts = tf.data.Dataset.from_tensor_slices((reviews.texts, tf.constant(reviews.labels, tf.float32)))

    def encode(text_batch, labels):
        inputs, _ = tokenizer.encode(text_batch)
        lengths = inputs["tokens"].row_lengths()
        return {k: v.to_tensor() for k, v in inputs.items()}, lengths, labels

    def unpad(inputs, length, label):
        return {k: v[:length] for k, v in inputs.items()}, label

    dataset = (
        texts.batch(4096)
        .map(encode)
        .unbatch()
        .filter(lambda inputs, length, label: length > 0)
        .map(unpad)
        .cache()
    )
    if shuffle:
        dataset = dataset.shuffle(len(reviews), seed=seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries(tokenizer.max_tokens)
    dataset = dataset.bucket_by_sequence_length(
        lambda inputs, label: tf.shape(inputs["tokens"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
