"""Recurrent decoder with attention over an encoded memory and tied output embeddings."""

from __future__ import annotations

import keras
from keras import ops

from seq2seq_app.core import recurrence
from seq2seq_app.core.layers.cross_attention import CrossAttention
from seq2seq_app.core.layers.rnn import make_rnn


@keras.saving.register_keras_serializable(package="seq2seq_app")
class AttentionDecoder(keras.layers.Layer):
    """Predicts the next token from the previous tokens, its recurrent state and the memory.

    Luong-style: the recurrent stack reads the target embeddings, each output attends over the
    memory, and `tanh(W [output; context])` is scored against the (tied) token embeddings. As in
    TensorFlow's NMT tutorial, one `call` serves a whole target sequence during training and a
    single step (a length-1 sequence plus the returned states) during decoding, so the two can
    never disagree.

    Args:
        vocab_size: number of target token ids.
        embedding_dim: size of the token embeddings and of the attentional vector.
        units: state size of each recurrent layer.
        cell: a name in `rnn.CELLS` ("gru", "lstm", "simple_rnn", "peephole_lstm", "coupled_lstm").
        num_layers: stacked recurrent layers.
        attention: "additive" (Bahdanau) or "multiplicative" (Luong).
        dropout: dropout rate.
        **kwargs: forwarded to `keras.layers.Layer`.

    Call args:
        token_ids, memory, memory_mask, states, keys, training: the tokens so far (or the last
            one), the encoder's memory, its mask, the recurrent states and the projected keys.
        output_table: for a single step, the token embeddings transposed ([embedding_dim,
            vocab_size]), read instead of the embedding table: as the output projection's right
            operand it is read in place, where the [vocab_size, embedding_dim] table is repacked
            on every call (exports keep it so; see `ExportBase`).

    Returns (from `call`):
        logits: [batch, length, vocab_size], float32.
        attention: [batch, length, memory_length], rows sum to 1 over unmasked memory.
        states: one list of state tensors per recurrent layer.

    Example:
    >>> decoder = AttentionDecoder(vocab_size=50, embedding_dim=8, units=16)
    >>> memory = ops.ones((2, 5, 12))
    >>> states = [[ops.zeros((2, 16))]]
    >>> logits, weights, states = decoder(ops.ones((2, 3), "int32"), memory,
    ...                                   ops.ones((2, 5), "bool"), states)
    >>> tuple(logits.shape), tuple(weights.shape)
    ((2, 3, 50), (2, 3, 5))
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        cell: str = "gru",
        num_layers: int = 1,
        attention: str = "additive",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.num_layers = num_layers
        self.attention_score = attention
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnns = [make_rnn(cell, units, name=f"rnn_{i}") for i in range(num_layers)]
        self.attention = CrossAttention(units, score=attention, name="attention")
        self.combine = keras.layers.Dense(embedding_dim, activation="tanh", name="combine")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.output_bias = self.add_weight(shape=(vocab_size,), initializer="zeros", name="output_bias")

    def call(self, token_ids, memory, memory_mask, states, keys=None, training=None, output_table=None):
        if output_table is None:
            x = self.embedding(token_ids)
        elif token_ids.shape[1] != 1:
            raise ValueError("output_table serves single steps: token_ids must be [batch, 1]")
        else:  # the rows of the previous tokens are the table's columns
            x = ops.take(ops.cast(output_table, self.compute_dtype), token_ids[:, 0], axis=1)
            x = ops.expand_dims(ops.transpose(x), 1)
        x = self.dropout_layer(x, training=training)
        new_states = []
        for i, (rnn, state) in enumerate(zip(self.rnns, states)):
            if x.shape[1] == 1:
                # One decoding step: run the cell directly, skipping the layer's time loop
                # (a loop inside the decoding loop costs more than the step itself on a CPU).
                if not training and recurrence.supports(rnn.cell):
                    out, state = recurrence.step(rnn.cell, recurrence.project(rnn.cell, x[:, 0]), list(state))
                else:
                    out, state = rnn.cell(x[:, 0], list(state), training=training)
                x, state = ops.expand_dims(out, 1), list(state)
            elif recurrence.supports(rnn):  # a whole sequence, as `RecurrentEncoder`
                x, state = recurrence.run(rnn, x, initial_states=list(state))
            else:
                x, *state = rnn(x, initial_state=list(state), training=training)
            new_states.append(state)
            if i < self.num_layers - 1:
                x = self.dropout_layer(x, training=training)
        context, weights = self.attention(x, memory, memory_mask, keys=keys)
        x = self.combine(ops.concatenate([x, ops.cast(context, x.dtype)], axis=-1))
        x = self.dropout_layer(x, training=training)
        logits = self._tied_logits(x, output_table) + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32"), ops.cast(weights, "float32"), new_states

    def _tied_logits(self, x, output_table=None):
        """x [batch, length, embedding_dim] scored against every token embedding.

        Tied embeddings (Press & Wolf, 2017): fewer parameters, better perplexity.
        """
        if output_table is not None:
            return ops.expand_dims(ops.matmul(x[:, 0], ops.cast(output_table, x.dtype)), 1)
        embeddings = ops.cast(self.embedding.embeddings, x.dtype)
        if x.shape[1] != 1:
            return ops.matmul(x, ops.transpose(embeddings))
        # One decoding step. With the [vocab, dim] table as the transposed right operand,
        # TensorFlow's CPU matmul repacks the whole table on every call of more than one row (a
        # beam, a batch), up to 10x the cost of the product at a few rows; with the table on the left it is
        # read in place and only the small [vocab, rows] result is transposed. For one row the
        # two forms cost the same.
        logits = ops.transpose(ops.matmul(embeddings, ops.transpose(x[:, 0])))
        return ops.expand_dims(logits, 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            cell=self.cell,
            num_layers=self.num_layers,
            attention=self.attention_score,
            dropout=self.dropout,
        )
        return config
