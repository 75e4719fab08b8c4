"""Attention from decoder states over encoder outputs, additive or multiplicative."""

from __future__ import annotations

import keras
from keras import ops

SCORES = ("additive", "multiplicative")
# Memory positions (rows × memory length) up to which one query step's context is an element-wise
# product and sum rather than a batched matmul, whose oneDNN call costs ~20 µs by itself on a
# CPU. Measured on a 2-core AMD EPYC, 512-wide memory (each inside a loop): 13 against 31 µs at
# 1 row of 8 positions, 22 against 34 at 1 × 100, 26 against 36 at 16 × 10; 55 against 42 at
# 32 × 10. 128 is a cautious cut below the crossing (between 160 and 320); the product's cost
# grows with the memory's width too. A row's context may so come out of either form as its
# batch grows or shrinks: the two agree up to float rounding.
FEW_POSITIONS = 128


@keras.saving.register_keras_serializable(package="seq2seq_app")
class CrossAttention(keras.layers.Layer):
    """Scores each memory position against each query and returns the weighted context.

    `additive` is Bahdanau's score `v·tanh(W_q q + W_k k)`, `multiplicative` is Luong's
    "general" score `q·W k`, each with the learned projections of query and keys. The scores
    and masked softmax are Keras's `AdditiveAttention` and `Attention` layers' (their weights
    too): `call` runs Keras's `Attention` for multiplicative scores and writes the additive ones
    out with their sum over units as one matrix product (`_additive_scores`); `step`, one
    decoding step, writes both out as Keras computes them. `project_keys` is split out so a
    decoder can project the memory once per sentence instead of once per step.

    Args:
        units: size of the projected space the scores are computed in.
        score: "additive" or "multiplicative".
        **kwargs: forwarded to `keras.layers.Layer`.

    Example:
    >>> from keras import ops
    >>> attention = CrossAttention(units=8, score="additive")
    >>> memory = ops.ones((2, 5, 6))
    >>> context, weights = attention(ops.ones((2, 3, 4)), memory, ops.ones((2, 5), "bool"))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(self, units: int, score: str = "additive", **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"Unknown attention score {score!r}; choose one of {SCORES}.")
        self.units = units
        self.score = score
        self.query_proj = keras.layers.Dense(units, use_bias=False, name="query_proj")
        self.key_proj = keras.layers.Dense(units, use_bias=False, name="key_proj")
        if score == "additive":
            self.attention = keras.layers.AdditiveAttention(use_scale=True, name="additive")
        else:
            self.attention = keras.layers.Attention(score_mode="dot", name="dot")

    def project_keys(self, memory):
        return self.key_proj(memory)

    def call(self, query, memory, memory_mask, keys=None):
        if keys is None:
            keys = self.project_keys(memory)
        query = self.query_proj(query)
        if self.score == "multiplicative":
            return self.attention(
                [query, memory, keys], mask=[None, memory_mask], return_attention_scores=True
            )
        # Keras's additive scores, masked softmax and context, written out as `step` writes them,
        # with the scores' sum over units as one product (`_additive_scores`).
        self._build_scores(query, memory, keys)
        scores = self._additive_scores(query[:, :, None, :] + keys[:, None, :, :])
        return self._context(scores, memory, memory_mask[:, None, :])

    def step(self, query, memory, memory_mask, keys=None):
        """`call` for one query step without the time axis: query [batch, features] →
        (context [batch, memory_width], weights [batch, memory_length]).

        Keras's scores and masked softmax, written out so the step's products are plain matmuls
        and its context can skip the batched matmul when the memory is small (`FEW_POSITIONS`).
        """
        if keys is None:
            keys = self.project_keys(memory)
        query = self.query_proj(query)
        self._build_scores(query, memory, keys)
        if self.score == "additive":
            # One query keeps Keras's element-wise form, so the exported graphs, which decode
            # with `step`, and their measured speed stay as they were.
            scale = ops.cast(self.attention.scale, query.dtype)
            scores = ops.sum(scale * ops.tanh(query[:, None, :] + keys), axis=-1)
        else:
            scores = ops.matmul(query[:, None, :], ops.transpose(keys, [0, 2, 1]))[:, 0]
        return self._context(scores, memory, memory_mask, one_query=True)

    def _build_scores(self, query, memory, keys):
        # Keras's scoring layer holds v (additive): `step`, and `call` for additive scores,
        # compute with its weights without calling it, so it is built here on first use.
        if not self.attention.built:
            self.attention.build([query.shape, memory.shape, keys.shape])

    def _additive_scores(self, summed):
        """v·tanh(summed) over the last axis (the units) as one matrix product. Keras's form, an
        element-wise product with v and a sum, costs several passes over the [batch, queries,
        memory, units] tensor, and its gradient more (v broadcast to that shape, two products of
        that size, a sum): on a CPU about a third of the op time of a captioner's training
        step, whose every caption word attends over every image region. The product reads the
        tensor once forward, and its gradients are products too. The same scores, up to float
        rounding."""
        scale = ops.cast(self.attention.scale, summed.dtype)
        return ops.tensordot(ops.tanh(summed), scale, axes=1)

    def _context(self, scores, memory, memory_mask, one_query=False):
        """Keras's masked softmax and weighted sum: (context, weights). `one_query`: scores
        [batch, memory_length] of one query step, whose context skips the batched matmul when the
        memory is small (`FEW_POSITIONS`)."""
        max_value = 65504.0 if scores.dtype == "float16" else 1.0e9  # Keras's padding bias
        scores = ops.where(memory_mask, scores, scores - max_value)
        weights = ops.softmax(scores, axis=-1)
        if not one_query:
            return ops.matmul(weights, memory), weights
        context = ops.cond(
            ops.size(weights) <= FEW_POSITIONS,
            lambda: ops.sum(weights[:, :, None] * memory, axis=1),
            lambda: ops.matmul(weights[:, None, :], memory)[:, 0],
        )
        return context, weights

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, score=self.score)
        return config
