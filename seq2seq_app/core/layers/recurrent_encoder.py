"""Embedding followed by a stack of (bidirectional) recurrent layers."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core import recurrence
from seq2seq_app.core.layers.rnn import make_rnn, num_states


@keras.saving.register_keras_serializable(package="seq2seq_app")
class RecurrentEncoder(keras.layers.Layer):
    """Encodes token ids into per-token outputs and a final state.

    Padding (id 0) is masked, so a sequence's outputs and state do not depend on how much
    padding follows it. The backward direction of a bidirectional layer starts at each
    sequence's own last token.

    Args:
        vocab_size: number of token ids.
        embedding_dim: size of the token embeddings.
        units: state size of each recurrent layer (per direction).
        cell: a name in `rnn.CELLS` ("gru", "lstm", "simple_rnn", "peephole_lstm", "coupled_lstm").
        num_layers: stacked recurrent layers.
        bidirectional: run each layer in both directions and concatenate.
        dropout: dropout rate on embeddings and between layers.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call args:
        token_ids: int [batch, length], 0 = padding.
        added_embeddings: optional [batch, length, embedding_dim] added to the token embeddings.

    Returns (from `call`):
        outputs: [batch, length, units * directions], zero at padding positions.
        states: list of the top layer's final states (h, and c for the LSTMs), each
            [batch, units * directions].

    Example:
    >>> encoder = RecurrentEncoder(vocab_size=100, embedding_dim=8, units=16)
    >>> outputs, states = encoder(ops.ones((2, 5), "int32"))
    >>> tuple(outputs.shape), tuple(states[0].shape)
    ((2, 5, 32), (2, 32))
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        cell: str = "gru",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = []
        for i in range(num_layers):
            rnn = make_rnn(cell, units, name=f"rnn_{i}")
            if bidirectional:
                rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", name=f"birnn_{i}")
            self.rnns.append(rnn)
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")

    def call(self, token_ids, added_embeddings=None, training=None):
        mask = ops.not_equal(token_ids, 0)
        x = self.embedding(token_ids)
        if added_embeddings is not None:  # extra per-token features, e.g. bigram embeddings
            x = x + ops.cast(added_embeddings, x.dtype)
        x = self.dropout_layer(x, training=training)
        n = num_states(self.cell)
        for i, rnn in enumerate(self.rnns):
            if recurrence.supports(rnn):
                # Same outputs and gradients, cheaper on a CPU (see `recurrence`); with a GPU
                # Keras's layers run with cuDNN.
                x, states = recurrence.run(rnn, x, mask, training=training)
            else:
                x, *states = rnn(x, mask=mask, training=training)
            if i < self.num_layers - 1:
                x = self.dropout_layer(x, training=training)
        if self.bidirectional:  # [fwd states..., bwd states...] -> concatenated per state
            states = [ops.concatenate([states[j], states[n + j]], axis=-1) for j in range(n)]
        x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return x, states

    @property
    def output_dim(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
        )
        return config
