"""A token vocabulary built from training data, with in-graph lookups in both directions."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = range(len(RESERVED))


class Vocabulary:
    """Maps tokens to ids and back; ids 0–3 are padding, unknown, start and end.

    Args:
        tokens: the vocabulary's tokens after the reserved ones, most frequent first.

    Example:
    >>> vocab = Vocabulary.build([["a", "b", "a"]], max_size=10)
    >>> vocab.tokens
    ['[PAD]', '[UNK]', '[START]', '[END]', 'a', 'b']
    >>> vocab.encode(tf.ragged.constant([["b", "zzz"]])).to_list()
    [[5, 1]]
    """

    def __init__(self, tokens: Iterable[str]):
        tokens = [t for t in tokens if t not in RESERVED]
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocabulary tokens must be unique.")
        self.tokens = list(RESERVED) + tokens
        self._table: tf.lookup.StaticHashTable | None = None

    @classmethod
    def build(
        cls, token_lists: Iterable[Iterable[str]], max_size: int = 20000, min_count: int = 1
    ) -> Vocabulary:
        """Counts tokens and keeps the `max_size` most frequent seen at least `min_count` times.

        Ties are broken alphabetically, so the same data always gives the same vocabulary.
        """
        counts = collections.Counter(tok for tokens in token_lists for tok in tokens)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [tok for tok, n in ranked if n >= min_count and tok not in RESERVED]
        return cls(kept[: max(0, max_size - len(RESERVED))])

    def __len__(self) -> int:
        return len(self.tokens)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.tokens[len(RESERVED) :]) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        return cls(line for line in lines if line)

    @property
    def table(self) -> tf.lookup.StaticHashTable:
        """Token → id table (unknown tokens map to `UNK_ID`); a resource a SavedModel can track."""
        if self._table is None:
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.tokens), tf.range(len(self.tokens), dtype=tf.int64)
                ),
                default_value=UNK_ID,
            )
        return self._table

    def encode(self, tokens: tf.RaggedTensor) -> tf.RaggedTensor:
        """Ragged string tokens → ragged int32 ids."""
        return tf.cast(tokens.with_flat_values(self.table.lookup(tokens.flat_values)), tf.int32)

    def encode_numpy(self, token_lists: Iterable[Iterable[str]]) -> list[np.ndarray]:
        """Eager lookup for data preparation: a list of int32 arrays."""
        index = {tok: i for i, tok in enumerate(self.tokens)}
        return [np.array([index.get(t, UNK_ID) for t in toks], np.int32) for toks in token_lists]
