"""The sentiment classifier as a string-in SavedModel (core TensorFlow ops only).

Signature (the contract other programs rely on; see the README):
    classify(text: string[b]) -> score: float32[b] (probability the review is positive),
        label: string[b] ("positive", "negative", or "empty" for a review with no characters),
        tokens: string[b, n] (the units the model read, "" at padding),
        token_scores: float32[b, n] (the score of the review up to and including each token,
        0 at padding; the last real entry equals `score`)
"""

from __future__ import annotations

import tensorflow as tf

from seq2seq_app.core.export_base import ExportBase
from seq2seq_app.sentiment.review_tokenizer import ReviewTokenizer
from seq2seq_app.sentiment.sentiment_classifier import SentimentClassifier

EMPTY_SCORE = 0.5  # what a review with nothing to read gets: no evidence either way
# Reviews scored together after sorting by length. With packed rows (`core.recurrence`), 64 gave
# the NSMC model the most reviews/s of 16, 32, 64, 128 and 256 (one chunk), measured.
CHUNK = 64


class SentimentExport(ExportBase):
    """Wraps a trained `SentimentClassifier` and its tokenizer with a text-level `classify`.

    Args:
        model: a built `SentimentClassifier`.
        tokenizer: the `ReviewTokenizer` the model was trained with.
        float16_storage: store weight matrices in float16, half the size (see `ExportBase`).

    Example:
    >>> SentimentExport(model, tokenizer).save("saved_models/sentiment_nsmc")  # doctest: +SKIP
    """

    SIGNATURES = ("classify",)

    def __init__(self, model: SentimentClassifier, tokenizer: ReviewTokenizer, float16_storage: bool = True):
        super().__init__(model, float16_storage=float16_storage)
        self._token_logits = model.token_logits
        # A bidirectional model re-reads every prefix: a chunk costs rows × length² states, so
        # it scores one review at a time to keep memory bounded (400 tokens: ~330 MB).
        self.chunk = 1 if model.bidirectional else CHUNK
        self.tokenizer = tokenizer
        self.tables = [v.table for v in (tokenizer.vocab, tokenizer.bigram_vocab) if v is not None]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def classify(self, text):
        inputs, units = self.tokenizer(self.non_empty(text, tf.constant([""])))
        # At least one column, so a batch of empty reviews still runs (and scores EMPTY_SCORE).
        width = tf.maximum(tf.shape(units)[1], 1)
        inputs = {k: _pad_columns(v, width, 0) for k, v in inputs.items()}
        units = _pad_columns(units, width, "")
        real = tf.not_equal(inputs["tokens"], 0)
        lengths = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
        token_scores = tf.where(real, tf.sigmoid(self._logits_by_length(inputs, lengths)), 0.0)
        last = tf.gather(token_scores, tf.maximum(lengths - 1, 0), batch_dims=1)
        score = tf.where(lengths > 0, last, EMPTY_SCORE)
        label = tf.where(lengths == 0, "empty", tf.where(score >= 0.5, "positive", "negative"))
        outputs = {"score": score, "label": label, "tokens": units, "token_scores": token_scores}
        return self.sliced(outputs, text)

    def _logits_by_length(self, inputs, lengths):
        """`token_logits` computed on chunks of reviews of similar length.

        A batch of reviews is as long as its longest one (NSMC: 140 characters against a
        median of 22). Sorting by length and trimming each chunk to its own longest review
        skips most of that padding wherever the layers run (Keras's loop steps every row
        through every column), and the chunks, independent, run side by side on the cores
        (`tf.while_loop` runs up to 10 iterations at once); on a CPU the recurrence also packs
        each chunk's rows. Results are put back in the caller's order.
        """
        batch, width = tf.shape(lengths)[0], tf.shape(inputs["tokens"])[1]
        order = tf.argsort(lengths)
        ordered = {k: tf.gather(v, order) for k, v in inputs.items()}
        ordered_lengths = tf.gather(lengths, order)
        (token_logits,) = self.with_weights(self._token_logits)
        chunks = (batch + self.chunk - 1) // self.chunk

        def body(i, results):
            start, end = i * self.chunk, tf.minimum((i + 1) * self.chunk, batch)
            longest = tf.maximum(ordered_lengths[end - 1], 1)
            logits = token_logits({k: v[start:end, :longest] for k, v in ordered.items()})
            return i + 1, results.write(i, _pad_columns(logits, width, 0.0))

        _, results = tf.while_loop(
            lambda i, _: i < chunks, body, (0, tf.TensorArray(tf.float32, size=chunks, infer_shape=False))
        )
        return tf.scatter_nd(order[:, None], results.concat(), [batch, width])


def _pad_columns(x, width, value):
    return tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]], constant_values=value)
