"""Open-vocabulary subword units, learned by our own code and applied in the graph with core ops.

Why hand-written: tensorflow-text's WordPiece and SentencePiece ops are not core TensorFlow, so a
SavedModel using them does not load with `tensorflow` alone or in stock TF Serving; no maintained
library learns subwords and applies them with core ops for Keras 3.

Units are learned with byte-pair-encoding merges (Sennrich et al., 2016) over the word counts of
the training data and applied by WordPiece-style greedy longest match (Schuster & Nakajima, 2012):
at each position of a word the longest vocabulary piece wins. Greedy longest match is what a
bounded `tf.while_loop` can do with one batched table lookup per step, where applying BPE merges in
their learned order would need one pass per merge. Pieces inside a word carry a `##` prefix, so
joining is exact. Every character of the training words is a piece, so any word made of seen
characters is spelled out; a character never seen becomes `[UNK]` for that one character and is
reported, never dropped silently (`unknown_characters`).
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.text import join_rows
from seq2seq_app.core.vocabulary import UNK_ID, Vocabulary

CONTINUATION = "##"


def _learn_merges(word_counts: dict[str, int], num_pieces: int) -> list[str]:
    """BPE: repeatedly merges the most frequent adjacent pair of pieces; returns the pieces.

    Pair counts are updated incrementally (only the words a merge touches are recounted), which
    keeps learning an 8k vocabulary from the ~25k distinct words of spa.txt to seconds.
    """
    words = [[w[0]] + [CONTINUATION + c for c in w[1:]] for w in word_counts]
    counts = list(word_counts.values())
    pieces = collections.Counter()
    for word, n in zip(words, counts):
        for p in word:
            pieces[p] += n
    vocab = sorted(pieces, key=lambda p: (-pieces[p], p))
    pairs: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for i, (word, n) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pairs[pair] += n
            where[pair].add(i)
    seen = set(vocab)
    # A max-heap of (count, pair) with stale entries skipped on pop: the most frequent pair in
    # O(log pairs) instead of a scan of every pair per merge. Ties go to the smaller pair.
    heap = [(-n, pair) for pair, n in pairs.items()]
    heapq.heapify(heap)
    while len(vocab) < num_pieces and heap:
        negative, (a, b) = heapq.heappop(heap)
        n = pairs.get((a, b), 0)
        if n != -negative:
            if n > 0:
                heapq.heappush(heap, (-n, (a, b)))
            continue
        if n < 2:
            break
        merged = a + b[len(CONTINUATION) :]
        for i in list(where.pop((a, b), ())):
            word, count = words[i], counts[i]
            for pair in zip(word, word[1:]):
                pairs[pair] -= count
                if pairs[pair] <= 0:
                    del pairs[pair]
                if pair != (a, b):
                    where[pair].discard(i)
            out, j = [], 0
            while j < len(word):
                if j + 1 < len(word) and word[j] == a and word[j + 1] == b:
                    out.append(merged)
                    j += 2
                else:
                    out.append(word[j])
                    j += 1
            words[i] = out
            for pair in zip(out, out[1:]):
                pairs[pair] += count
                where[pair].add(i)
                heapq.heappush(heap, (-pairs[pair], pair))
        pairs.pop((a, b), None)
        if merged not in seen:
            seen.add(merged)
            vocab.append(merged)
    return vocab


class SubwordVocabulary:
    """A piece vocabulary and its in-graph segmenter: words in, piece ids and piece strings out.

    Args:
        pieces: the pieces after the reserved tokens (word-initial pieces bare, inner ones `##`).
        max_piece_chars: longest piece tried at each position (longer pieces are never matched).

    Example:
    >>> sub = SubwordVocabulary.learn([["casa", "casas", "cosa"]] * 3, vocab_size=16)
    >>> ids, pieces, _ = sub.segment(tf.ragged.constant([["casas", "caso"]]))
    >>> [p.decode() for p in pieces.flat_values.numpy()]
    ['casas', 'cas', '##o']
    >>> SubwordVocabulary.join(pieces).numpy()[0].decode()
    'casas caso'
    """

    def __init__(self, pieces: Iterable[str], max_piece_chars: int = 24):
        self.vocab = Vocabulary(pieces)
        self.max_piece_chars = max_piece_chars
        self._segment_ids: tf.types.experimental.GenericFunction | None = None

    @classmethod
    def learn(
        cls, token_lists: Iterable[Iterable[str]], vocab_size: int, min_count: int = 1
    ) -> SubwordVocabulary:
        """Learns `vocab_size` pieces (reserved tokens included) from tokenised sentences.

        Every character of a word seen at least `min_count` times is kept whatever the size, so
        no seen word is ever unknown.
        """
        counts = collections.Counter(tok for tokens in token_lists for tok in tokens)
        kept = {w: n for w, n in sorted(counts.items()) if n >= min_count and w}
        pieces = _learn_merges(kept, max(1, vocab_size - 4))
        # Each seen character in both positions, so "h" seen only inside words can still start one.
        chars = sorted({c for w in kept for c in w})
        known = set(pieces)
        return cls(pieces + [p for c in chars for p in (c, CONTINUATION + c) if p not in known])

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def tokens(self) -> list[str]:
        return self.vocab.tokens

    def save(self, path: str | Path) -> None:
        self.vocab.save(path)

    @classmethod
    def load(cls, path: str | Path) -> SubwordVocabulary:
        return cls(Vocabulary.load(path).tokens)

    def encode_numpy(self, token_lists: Sequence[Sequence[str]], batch: int = 4096) -> list[np.ndarray]:
        """Piece ids of tokenised sentences for data preparation: a list of int32 arrays.

        Segmented by the same in-graph `segment` the exported model runs, so training and serving
        split every word alike.
        """
        if self._segment_ids is None:
            # The table is made here, eagerly: made inside the trace it would belong to that graph,
            # and the export (another graph) could not use it.
            _ = self.vocab.table
            self._segment_ids = tf.function(
                lambda words: self.segment(words)[0],
                input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)],
            )
        out: list[np.ndarray] = []
        for i in range(0, len(token_lists), batch):
            chunk = token_lists[i : i + batch]
            flat = tf.constant([t for tokens in chunk for t in tokens], tf.string)
            words = tf.RaggedTensor.from_row_lengths(flat, [len(tokens) for tokens in chunk])
            ids = self._segment_ids(words)
            out.extend(np.split(ids.flat_values.numpy(), np.cumsum(ids.row_lengths().numpy())[:-1]))
        return out

    def segment(self, words: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Splits every word of a ragged batch [b, (words)] into pieces, in the graph.

        Returns:
            ids: int32 [b, (pieces)]; a character never seen is one `[UNK]` piece.
            pieces: string [b, (pieces)], the text of each piece (`##` marks a word-inner piece;
                an unknown character is given as itself).
            word_index: int32 [b, (pieces)], which word of its sentence each piece came from.
        """
        flat = words.flat_values
        n = tf.shape(flat)[0]
        lengths = tf.strings.length(flat, unit="UTF8_CHAR")
        whole = tf.cast(self.vocab.table.lookup(flat), tf.int32)
        # A word that is itself a piece is its own longest match (the longest span is tried first),
        # so only the other words, a small share of running text, go through the matching loop.
        is_piece = tf.not_equal(whole, UNK_ID) & (lengths <= self.max_piece_chars)
        others_at = tf.where(~is_piece)
        # Skipped when every word is a piece, as in most short sentences: the loop's fixed cost is
        # most of a one-sentence segmentation.
        matched = tf.cond(
            tf.size(others_at) > 0,
            lambda: tf.stack(self._longest_match(tf.gather_nd(flat, others_at)), axis=-1),
            lambda: tf.zeros([0, 1, 3], tf.int32),
        )  # [others, steps, 3]
        # Every word's (id, start, length) per piece, [words, steps, 3]: a piece word's one piece
        # first, then the matched words' rows in place; only the real pieces are kept (ids ≥ 0).
        steps = tf.shape(matched)[1]
        own = tf.stack([whole, tf.zeros_like(whole), lengths], axis=-1)[:, None, :]
        padding = tf.fill(tf.stack([n, steps - 1, 3]), -1)
        per_word = tf.tensor_scatter_nd_update(tf.concat([own, padding], axis=1), others_at, matched)
        real = per_word[:, :, 0] >= 0
        counts = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        piece_ids, starts, spans = tf.unstack(tf.boolean_mask(per_word, real), axis=1)
        owners = tf.repeat(tf.range(n), counts)
        text = tf.strings.substr(tf.gather(flat, owners), starts, spans, "UTF8_CHAR")
        text = tf.where(starts > 0, CONTINUATION + text, text)
        # A sentence's pieces start where its first word's pieces start.
        piece_splits = tf.concat([[0], tf.cumsum(tf.cast(counts, tf.int64))], axis=0)
        sentence_ids = tf.RaggedTensor.from_row_splits(
            piece_ids, tf.gather(piece_splits, words.row_splits), validate=False
        )
        row_starts = tf.cast(words.row_starts(), tf.int32)
        in_sentence = tf.range(n) - tf.gather(row_starts, tf.cast(words.value_rowids(), tf.int32))
        word_index = tf.repeat(in_sentence, counts)
        return sentence_ids, sentence_ids.with_flat_values(text), sentence_ids.with_flat_values(word_index)

    def _longest_match(self, flat: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Greedy longest match of each word of `flat` [n]: (piece ids, piece starts, piece
        lengths in characters), each int32 [n, steps ≥ 1]; one batched lookup per step."""
        n = tf.shape(flat)[0]
        lengths = tf.strings.length(flat, unit="UTF8_CHAR")
        widths = tf.range(1, self.max_piece_chars + 1)
        table = self.vocab.table

        def step(i, pos, ids_out, start_out, len_out):
            at = tf.tile(pos[:, None], [1, self.max_piece_chars])
            span = tf.tile(widths[None, :], [n, 1])
            text = tf.strings.substr(tf.tile(flat[:, None], [1, self.max_piece_chars]), at, span, "UTF8_CHAR")
            text = tf.where(at > 0, CONTINUATION + text, text)
            found = tf.cast(table.lookup(text), tf.int32)
            fits = (pos[:, None] + span <= lengths[:, None]) & tf.not_equal(found, UNK_ID)
            # The longest piece that fits; none (a character never seen) takes one char as UNK.
            best = tf.reduce_max(tf.where(fits, span, 0), axis=1)
            piece_id = tf.gather(found, tf.maximum(best - 1, 0), batch_dims=1)
            piece_id = tf.where(best > 0, piece_id, UNK_ID)
            taken = tf.maximum(best, 1)
            active = pos < lengths
            ids_out = ids_out.write(i, tf.where(active, piece_id, -1))
            start_out = start_out.write(i, pos)
            len_out = len_out.write(i, taken)
            return i + 1, tf.where(active, pos + taken, pos), ids_out, start_out, len_out

        arrays = [tf.TensorArray(tf.int32, size=0, dynamic_size=True) for _ in range(3)]
        _, _, ids_ta, start_ta, len_ta = tf.while_loop(
            # At least one step, so no words at all still stack to a [1, 0] array.
            lambda i, pos, *_: (i < 1) | tf.reduce_any(pos < lengths),
            step,
            [tf.constant(0), tf.zeros([n], tf.int32), *arrays],
        )
        # [words, steps] each; a word's id is -1 after its last piece.
        return tuple(tf.transpose(ta.stack()) for ta in (ids_ta, start_ta, len_ta))

    def unknown_characters(self, words: tf.RaggedTensor) -> tf.Tensor:
        """The characters of each sentence that no piece covers, joined: string [b] ("" if none)."""
        ids, pieces, _ = self.segment(words)
        unknown = tf.ragged.boolean_mask(pieces, tf.equal(ids, UNK_ID))
        unknown = tf.strings.regex_replace(unknown, "^" + CONTINUATION, "")
        return join_rows(unknown)

    @staticmethod
    def join(pieces: tf.RaggedTensor) -> tf.Tensor:
        """Pieces [b, (pieces)] → words separated by single spaces, string [b]."""
        text = join_rows(pieces, " ")
        text = tf.strings.regex_replace(text, " " + CONTINUATION, "")
        return tf.strings.regex_replace(text, "^" + CONTINUATION, "")
