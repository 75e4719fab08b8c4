"""Attention from decoder states over encoder outputs, additive or multiplicative."""

from __future__ import annotations

import keras

SCORES = ("additive", "multiplicative")


@keras.saving.register_keras_serializable(package="seq2seq_app")
class CrossAttention(keras.layers.Layer):
    """Scores each memory position against each query and returns the weighted context.

    `additive` is Bahdanau's score `v·tanh(W_q q + W_k k)`, `multiplicative` is Luong's
    "general" score `q·W k`. The scoring and masked softmax are Keras's own `AdditiveAttention`
    and `Attention` layers; this layer adds the learned projections. `project_keys` is split
    out so a decoder can project the memory once per sentence instead of once per step.

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
        context, weights = self.attention(
            [self.query_proj(query), memory, keys],
            mask=[None, memory_mask],
            return_attention_scores=True,
        )
        return context, weights

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, score=self.score)
        return config
