"""What every attention encoder–decoder shares: one decoding step and teacher-forced training."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras


class DecoderState(NamedTuple):
    """What `encode` returns and `decode_step` carries from one step to the next.

    Every field's first dimension is the batch, so the searches can repeat and reorder it.

    Args:
        memory: [batch, memory_length, units], what attention reads (encoder outputs or regions).
        memory_mask: bool [batch, memory_length], False at padding.
        keys: the memory projected once for additive attention.
        decoder_states: per decoder layer, the list of its recurrent states.
    """

    memory: Any
    memory_mask: Any
    keys: Any
    decoder_states: list


class EncoderDecoder(keras.Model):
    """Base for models whose `encode` returns a `DecoderState` and
    whose `self.decoder` is an `AttentionDecoder`.

    Subclasses implement `encode(source, training=None)` and set `source_key`, the name of the
    source in the inputs dict. The search functions in `seq2seq_app.core.decoding` drive `encode` and
    `decode_step`; the model holds no decoding loop.
    """

    source_key = "source"

    def encode(self, source, training=None):
        raise NotImplementedError

    @property
    def output_layer(self) -> tuple[keras.Variable, keras.Variable]:
        """The decoder's token embeddings, which also score its outputs, and its output bias:
        `decode_step` may be given them as one `output_table` (see `AttentionDecoder`)."""
        return self.decoder.embedding.embeddings, self.decoder.output_bias

    def decode_step(self, token_ids, state, output_table=None, embedding_rows=None):
        """One decoding step: token_ids [batch] → (logits [batch, vocab, or the output table's
        columns], attention, state).

        `output_table`, if given, is `output_layer` as one table, and `embedding_rows` the
        embeddings untransposed, in any float dtype (see `AttentionDecoder.step`)."""
        logits, weights, states = self.decoder.step(
            token_ids,
            state.memory,
            state.memory_mask,
            state.decoder_states,
            keys=state.keys,
            output_table=output_table,
            embedding_rows=embedding_rows,
        )
        return logits, weights, state._replace(decoder_states=states)

    def call(self, inputs, training=None, return_attention=False):
        memory, mask, keys, states = self.encode(inputs[self.source_key], training=training)
        logits, weights, _ = self.decoder(
            inputs["target_in"], memory, mask, states, keys=keys, training=training
        )
        return (logits, weights) if return_attention else logits
