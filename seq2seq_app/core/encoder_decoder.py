"""What every attention encoder–decoder shares: one decoding step and teacher-forced training."""

from __future__ import annotations

import keras
from keras import ops


class EncoderDecoder(keras.Model):
    """Base for models whose `encode` returns `(memory, memory_mask, keys, decoder_states)` and
    whose `self.decoder` is an `AttentionDecoder`.

    Subclasses implement `encode(source, training=None)` and set `source_key`, the name of the
    source in the inputs dict. The search functions in `seq2seq_app.core.decoding` drive `encode` and
    `decode_step`; the model holds no decoding loop.
    """

    source_key = "source"

    def encode(self, source, training=None):
        raise NotImplementedError

    def decode_step(self, token_ids, state):
        """One decoding step: token_ids [batch] → (logits [batch, vocab], attention, state)."""
        memory, mask, keys, states = state
        logits, weights, states = self.decoder(ops.expand_dims(token_ids, 1), memory, mask, states, keys=keys)
        return logits[:, 0], weights[:, 0], (memory, mask, keys, states)

    def call(self, inputs, training=None, return_attention=False):
        memory, mask, keys, states = self.encode(inputs[self.source_key], training=training)
        logits, weights, _ = self.decoder(
            inputs["target_in"], memory, mask, states, keys=keys, training=training
        )
        return (logits, weights) if return_attention else logits
