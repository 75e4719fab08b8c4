"""Parallel corpora for translation: reading, splitting, vocabularies and tf.data pipelines."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.batching import bucket_boundaries
from seq2seq_app.core.splits import grouped_split
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, START_ID, Vocabulary


@dataclasses.dataclass
class ParallelCorpus:
    """Aligned source and target sentences plus a count of lines that could not be used."""

    sources: list[str]
    targets: list[str]
    malformed: int = 0

    def __len__(self) -> int:
        return len(self.sources)


def _collect(raw_pairs: Iterable[tuple[bytes, bytes] | None]) -> ParallelCorpus:
    """Builds a corpus from raw (source, target) byte pairs; None marks an unusable line.

    Pairs with invalid UTF-8 or an empty side are counted as malformed and skipped.
    """
    sources, targets, malformed = [], [], 0
    for pair in raw_pairs:
        try:
            # utf-8-sig: a byte-order mark at the start of a file is not part of the first sentence.
            source, target = (side.decode("utf-8-sig").strip() for side in pair) if pair else ("", "")
        except UnicodeDecodeError:
            source = target = ""
        if not source or not target:
            malformed += 1
            continue
        sources.append(source)
        targets.append(target)
    return ParallelCorpus(sources, targets, malformed)


def read_pair_file(path: str | Path, source_column: int, target_column: int) -> ParallelCorpus:
    """Reads a tab-separated pair file such as Tatoeba's `English<TAB>Spanish[<TAB>attribution]`.

    Lines with too few columns, an empty side or invalid UTF-8 are counted as malformed and
    skipped.

    Args:
        path: the file.
        source_column: 0-based column of the source language.
        target_column: 0-based column of the target language.

    Example:
    >>> corpus = read_pair_file("../shared/data/translation/spa-eng/spa.txt", 1, 0)  # doctest: +SKIP
    """

    def pairs():
        with open(path, "rb") as f:
            for line in f:
                columns = line.rstrip(b"\r\n").split(b"\t")
                ok = len(columns) > max(source_column, target_column)
                yield (columns[source_column], columns[target_column]) if ok else None

    return _collect(pairs())


def read_aligned_files(source_path: str | Path, target_path: str | Path) -> ParallelCorpus:
    """Reads two line-aligned files (e.g. Multi30k `train.de` and `train.en`).

    Pairs with an empty side or invalid UTF-8 are counted as malformed; files of different
    lengths are an error, since every later pair would be misaligned.
    """
    source_lines = Path(source_path).read_bytes().splitlines()
    target_lines = Path(target_path).read_bytes().splitlines()
    if len(source_lines) != len(target_lines):
        raise ValueError(
            f"{source_path} has {len(source_lines)} lines but {target_path} has "
            f"{len(target_lines)}; line-aligned files must have the same number of lines."
        )
    return _collect(zip(source_lines, target_lines))


def read_tfds(name: str, split: str, source_key: str, target_key: str, data_dir=None) -> ParallelCorpus:
    """Reads a TFDS translation dataset, e.g. `ted_hrlr_translate/pt_to_en` (downloads it)."""
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir)
    return _collect((ex[source_key], ex[target_key]) for ex in tfds.as_numpy(dataset))


def split_corpus(
    corpus: ParallelCorpus, validation: float, test: float, seed: int = 0
) -> tuple[ParallelCorpus, ParallelCorpus, ParallelCorpus]:
    """Carves validation and test splits, keeping every copy of a source sentence in one split.

    Tatoeba often has several translations of one sentence; grouping by source keeps the held-out
    splits honest (a test sentence is never seen in training).
    """

    def take(index: list[int]) -> ParallelCorpus:
        return ParallelCorpus([corpus.sources[i] for i in index], [corpus.targets[i] for i in index])

    return tuple(take(p) for p in grouped_split(corpus.sources, validation, test, seed))  # type: ignore[return-value]


class Truecaser:
    """Lowercases a sentence's first word unless the word is usually capitalised.

    Targets keep their case so the model writes "Tom" and "I", but the capital that only marks
    a sentence start is removed (detokenisation restores it), so "The" and "the" share one token.
    """

    def __init__(self, token_lists: Sequence[Sequence[str]]):
        forms: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for tokens in token_lists:
            for tok in tokens[1:]:
                forms[tok.lower()][tok] += 1
        self.best = {low: c.most_common(1)[0][0] for low, c in forms.items()}

    def __call__(self, tokens: list[str]) -> list[str]:
        if not tokens:
            return tokens
        first = tokens[0]
        return [self.best.get(first.lower(), first.lower())] + tokens[1:]


def encode_pairs(
    source_tokens: Sequence[Sequence[str]],
    target_tokens: Sequence[Sequence[str]],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    max_length: int,
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Ids with END appended to sources and START/END around targets; drops over-long pairs.

    Returns (source_ids, target_ids, number_dropped).
    """
    sources = source_vocab.encode_numpy(source_tokens)
    targets = target_vocab.encode_numpy(target_tokens)
    kept_s, kept_t = [], []
    for s, t in zip(sources, targets):
        if len(s) + 1 > max_length or len(t) + 2 > max_length:
            continue
        kept_s.append(np.append(s, END_ID).astype(np.int32))
        kept_t.append(np.concatenate([[START_ID], t, [END_ID]]).astype(np.int32))
    return kept_s, kept_t, len(sources) - len(kept_s)


def make_dataset(
    source_ids: Sequence[np.ndarray],
    target_ids: Sequence[np.ndarray],
    tokens_per_batch: int,
    max_length: int,
    shuffle: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Length-bucketed batches of `({"source", "target_in"}, target_out)`.

    Pairs of similar length are batched together, each bucket's batch size set so a batch holds
    about `tokens_per_batch` target tokens; this cuts padding, the main waste in RNN training.
    """
    boundaries = bucket_boundaries(max_length)
    spec = tf.TensorSpec([None], tf.int32)
    dataset = tf.data.Dataset.from_generator(
        lambda: zip(source_ids, target_ids), output_signature=(spec, spec)
    ).cache()
    if shuffle:
        dataset = dataset.shuffle(len(source_ids), seed=seed, reshuffle_each_iteration=True)
    batch_sizes = [max(1, tokens_per_batch // b) for b in boundaries + [max_length + 1]]
    dataset = dataset.bucket_by_sequence_length(
        lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0]),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=batch_sizes,
        padded_shapes=([None], [None]),
        padding_values=(PAD_ID, PAD_ID),
        pad_to_bucket_boundary=False,
    )

    def to_inputs(s, t):
        return {"source": s, "target_in": t[:, :-1]}, t[:, 1:]

    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
