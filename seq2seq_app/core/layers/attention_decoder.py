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
    memory, and `tanh(W [output; context])` is scored against the (tied) token embeddings. `call`
    serves a whole target sequence (teacher forcing); `step` serves decoding, one token at a time
    without the time axis, and a length-1 `call` runs it. Both use the same weights and
    formulas; tests hold them equal up to float rounding.

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
        output_table: for a single step, the output layer as one [embedding_dim + 1, columns]
            right operand: the token embeddings transposed over the output bias, columns past
            vocab_size scored NEG_INF (exports hold it so; see `Float32Copy`). The logits are
            then `[x, 1] @ output_table`, [batch, columns]: one product, read in place, where the
            [vocab_size, embedding_dim] table is repacked on every call and the bias is one
            more pass.

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
        if token_ids.shape[1] == 1:  # one step: the same computation as `step`
            logits, weights, states = self.step(
                token_ids[:, 0], memory, memory_mask, states, keys, training, output_table
            )
            return ops.expand_dims(logits, 1), ops.expand_dims(weights, 1), states
        if output_table is not None:
            raise ValueError("output_table serves single steps: token_ids must be [batch, 1]")
        x = self.dropout_layer(self.embedding(token_ids), training=training)
        new_states = []
        for i, (rnn, state) in enumerate(zip(self.rnns, states)):
            if recurrence.supports(rnn):  # a whole sequence, as `RecurrentEncoder`
                x, state = recurrence.run(rnn, x, initial_states=list(state), training=training)
            else:
                x, *state = rnn(x, initial_state=list(state), training=training)
            new_states.append(state)
            if i < self.num_layers - 1:
                x = self.dropout_layer(x, training=training)
        context, weights = self.attention(x, memory, memory_mask, keys=keys)
        x = self.combine(ops.concatenate([x, ops.cast(context, x.dtype)], axis=-1))
        x = self.dropout_layer(x, training=training)
        # Tied embeddings (Press & Wolf, 2017): fewer parameters, better perplexity.
        embeddings = ops.cast(self.embedding.embeddings, x.dtype)
        logits = ops.matmul(x, ops.transpose(embeddings)) + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32"), ops.cast(weights, "float32"), new_states

    def step(
        self,
        token_ids,
        memory,
        memory_mask,
        states,
        keys=None,
        training=None,
        output_table=None,
        embedding_rows=None,
    ):
        """One decoding step without the time axis: token_ids [batch] → (logits [batch,
        vocab_size], attention [batch, memory_length], states).

        The search functions call this once per token, so every op it saves is saved at every
        step: the cells run directly rather than through a layer's time loop, and the dense
        layers see [batch, features] (one matmul each) rather than a length-1 sequence (a
        `Tensordot` of a dozen ops). `embedding_rows`, if given, holds the token embeddings
        [vocab_size, embedding_dim] in any float dtype (as an export stores them; with
        `output_table`, the same weights): the previous tokens' rows are gathered from it, where
        their columns of `output_table` lie across the whole table (at 64 rows, ~95 µs a step).
        """
        if embedding_rows is not None:
            x = ops.cast(ops.take(embedding_rows, token_ids, axis=0), self.compute_dtype)
        else:
            x = self.embedding(token_ids)
        x = self.dropout_layer(x, training=training)
        new_states = []
        for i, (rnn, state) in enumerate(zip(self.rnns, states)):
            if not training and recurrence.supports(rnn.cell):
                x, state = recurrence.step(rnn.cell, recurrence.project(rnn.cell, x), list(state))
            else:
                x, state = rnn.cell(x, list(state), training=training)
            new_states.append(list(state))
            if i < self.num_layers - 1:
                x = self.dropout_layer(x, training=training)
        context, weights = self.attention.step(x, memory, memory_mask, keys=keys)
        x = self.combine(ops.concatenate([x, ops.cast(context, x.dtype)], axis=-1))
        x = self.dropout_layer(x, training=training)
        if output_table is not None:
            # The bias inside the product: 0.92x the time of a product and a bias pass after it
            # at 64 rows, 8,059 × 320 table, 2-core AMD EPYC.
            x = ops.concatenate([x, ops.ones_like(x[:, :1])], axis=-1)
            logits = ops.matmul(x, ops.cast(output_table, x.dtype))
        else:
            # With the [vocab, dim] table as the transposed right operand, TensorFlow's CPU
            # matmul repacks the whole table on every call of more than one row (a beam, a
            # batch), up to 10x the cost of the product at a few rows; with the table on the left
            # it is read in place and only the small [vocab, rows] result is transposed.
            embeddings = ops.cast(self.embedding.embeddings, x.dtype)
            logits = ops.transpose(ops.matmul(embeddings, ops.transpose(x)))
            logits = logits + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32"), ops.cast(weights, "float32"), new_states

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
