"""Recurrent many-to-one classifier that also scores every prefix of a review."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core.layers.recurrent_encoder import RecurrentEncoder


@keras.saving.register_keras_serializable(package="seq2seq_app")
class SentimentClassifier(keras.Model):
    """Token ids (and optional bigram ids) in, the logit of "positive" out.

    Features of a (prefix of a) review: the recurrent state after its last token concatenated
    with the mean of the outputs over its tokens. For a unidirectional encoder both are known
    after every token in one pass, so `token_logits` gives the score of every prefix for the
    cost of one forward pass, and its value at the last token equals `call`'s. A bidirectional
    encoder's backward direction starts at the end of whatever it reads, so `token_logits`
    re-reads every prefix on its own (cost grows with length squared); the last value still
    equals `call`'s.

    Args:
        vocab_size: number of token ids (0 = padding).
        bigram_vocab_size: number of bigram ids, or 0 for no bigram features.
        embedding_dim: embedding size (tokens and bigrams, summed).
        units: recurrent state size (per direction).
        cell: "lstm", "gru" or "simple_rnn".
        num_layers: stacked recurrent layers.
        bidirectional: read both directions.
        dropout: dropout on embeddings, between layers and before the output layer.
        **kwargs: forwarded to `keras.Model`.

    Example:
    >>> model = SentimentClassifier(vocab_size=50, bigram_vocab_size=70, embedding_dim=8, units=16)
    >>> inputs = {"tokens": ops.ones((2, 7), "int32"), "bigrams": ops.ones((2, 7), "int32")}
    >>> tuple(model(inputs).shape), tuple(model.token_logits(inputs).shape)
    ((2,), (2, 7))
    """

    def __init__(
        self,
        vocab_size: int,
        bigram_vocab_size: int = 0,
        embedding_dim: int = 128,
        units: int = 256,
        cell: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.bigram_vocab_size = bigram_vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.encoder = RecurrentEncoder(
            vocab_size,
            embedding_dim,
            units,
            cell=cell,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            name="encoder",
        )
        self.bigram_embedding = (
            keras.layers.Embedding(bigram_vocab_size, embedding_dim, name="bigram_embedding")
            if bigram_vocab_size
            else None
        )
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
        # float32 output under mixed precision: the sigmoid and loss need its range.
        self.head = keras.layers.Dense(1, dtype="float32", name="head")

    def _encode(self, inputs, training=None):
        tokens = inputs["tokens"]
        added = None
        if self.bigram_embedding is not None:
            added = self.bigram_embedding(inputs["bigrams"])
        outputs, states = self.encoder(tokens, added_embeddings=added, training=training)
        mask = ops.cast(ops.not_equal(tokens, 0), outputs.dtype)
        return outputs, states[0], mask

    def _logit(self, features, training=None):
        return ops.squeeze(self.head(self.head_dropout(features, training=training)), -1)

    def call(self, inputs, training=None):
        """Logit [batch] of each whole review."""
        outputs, last, mask = self._encode(inputs, training)
        count = ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        mean = ops.sum(outputs, axis=1) / count  # outputs are zero at padding
        return self._logit(ops.concatenate([last, mean], axis=-1), training)

    def token_logits(self, inputs):
        """Logit [batch, length] of each prefix: entry t scores the review's first t + 1 tokens.

        Entries at padding positions repeat nothing useful; callers mask them with `tokens != 0`.
        """
        if self.bidirectional:
            return self._prefix_logits_by_rereading(inputs)
        outputs, _, mask = self._encode(inputs)
        counts = ops.maximum(ops.cumsum(ops.cast(mask, "float32"), axis=1), 1.0)
        # The head is linear, so the score of the running mean of the outputs is the running mean
        # of each output's score: the cumulative sum runs over [batch, length] rather than over
        # [batch, length, units], which on a CPU was a fifth of the export's time.
        outputs = ops.cast(outputs, "float32")  # the head computes in float32
        units = outputs.shape[-1]
        if not self.head.built:  # token_logits may come before any call
            self.head.build((None, 2 * units))
        kernel = ops.cast(self.head.kernel, "float32")
        own = ops.matmul(outputs, kernel[:units])[..., 0]
        means = ops.cumsum(ops.matmul(outputs, kernel[units:])[..., 0], axis=1) / counts
        return own + means + ops.cast(self.head.bias, "float32")

    def _prefix_logits_by_rereading(self, inputs):
        length = ops.shape(inputs["tokens"])[1]
        # keep[t, j]: token j belongs to the prefix that ends at token t.
        keep = ops.cast(ops.tril(ops.ones((length, length))), "int32")
        prefixes = {
            key: ops.reshape(ops.expand_dims(ids, 1) * keep, (-1, length)) for key, ids in inputs.items()
        }
        return ops.reshape(self(prefixes), (-1, length))

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            bigram_vocab_size=self.bigram_vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
        )
        return config
