"""The translator as a string-in/string-out SavedModel (core TensorFlow ops only).

Signatures (the contract other programs rely on; see the README):
    translate(text: string[b]) -> translation: string[b], attention: float32[b, t, s],
        source_tokens: string[b, s], target_tokens: string[b, t]
    translate_beam(text, beam_size: int32[], length_penalty: float32[]) -> translation,
        candidates: string[b, n], scores: float32[b, n], attention, source_tokens, target_tokens
    translate_sample(text, temperature: float32[]) -> same outputs as translate
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from seq2seq_app.core import decoding, text
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary
from seq2seq_app.translation.translator import Translator

MAX_BEAM = 16


class TranslatorExport(tf.Module):
    """Wraps a trained `Translator` and its vocabularies with text-level `tf.function`s.

    Unknown target words are replaced by the source token the decoder attended to most when it
    produced them (Luong et al., 2015), so names and numbers come through instead of `[UNK]`.

    Args:
        model: a built `Translator`.
        source_vocab: vocabulary of lowercased source tokens.
        target_vocab: vocabulary of target tokens.
        max_output_length: hard cap on output tokens.
        max_source_tokens: longer inputs are truncated to this many tokens.
        no_repeat_ngram_size: no output repeats an n-gram of this many tokens (0 turns it off);
            3 removed every loop from news sentences at no cost in BLEU (see docs/translation.md).

    Example:
    >>> TranslatorExport(model, src_vocab, tgt_vocab).save("saved_models/translate_spa_en")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Translator,
        source_vocab: Vocabulary,
        target_vocab: Vocabulary,
        max_output_length: int = 100,
        max_source_tokens: int = 100,
        no_repeat_ngram_size: int = 3,
    ):
        super().__init__()
        # The model's TF variables are tracked directly and the Keras model is held only through
        # its bound methods: tracking both would store every weight twice, and TF's tracking
        # does not follow every Keras container (nested lists of layers).
        self.model_variables = [v.value for v in model.weights]
        self._encode = model.encode
        self._model_step = model.decode_step
        self.source_table = source_vocab.table
        self.target_tokens = tf.constant(target_vocab.tokens)
        # Both vocabularies travel in the SavedModel, so it can be re-exported on its own.
        self.source_vocabulary = tf.Variable(source_vocab.tokens, trainable=False, name="source_vocabulary")
        self.target_vocabulary = tf.Variable(target_vocab.tokens, trainable=False, name="target_vocabulary")
        self.max_output_length = max_output_length
        self.max_source_tokens = max_source_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        # Saved too, so a re-export knows how this one decoded.
        self.decoding_no_repeat_ngram_size = tf.Variable(no_repeat_ngram_size, trainable=False)

    def _encode_text(self, texts):
        cased = text.tokenize(texts, lowercase=False)[:, : self.max_source_tokens]
        lowered = text.lowercase_tokens(cased)
        raw = tf.concat([cased, tf.fill([cased.nrows(), 1], "")], axis=1)  # aligned with END below
        ids = tf.cast(self.source_table.lookup(lowered), tf.int32)
        ids = tf.concat([ids, tf.fill([ids.nrows(), 1], END_ID)], axis=1)  # every source ends with END
        lengths = tf.cast(lowered.row_lengths(), tf.int32)
        # Outputs may be about twice as long as inputs, never longer than the cap; nothing in,
        # nothing out.
        max_lengths = tf.where(lengths > 0, tf.minimum(2 * lengths + 10, self.max_output_length), 0)
        return ids.to_tensor(), raw.to_tensor(), max_lengths

    def _search_inputs(self, texts):
        # An empty batch decodes one empty string instead (recurrent layers cannot run on zero
        # rows); `_outputs` slices the results back to the caller's batch.
        texts = tf.cond(tf.size(texts) > 0, lambda: texts, lambda: tf.constant([""]))
        ids, raw, max_lengths = self._encode_text(texts)
        step, state = decoding.no_repeat_ngrams(
            self._model_step, self._encode(ids), self.no_repeat_ngram_size, tf.reduce_max(max_lengths)
        )
        starts = tf.fill([tf.shape(ids)[0]], START_ID)
        return raw, max_lengths, step, state, starts

    def _to_text(self, ids, attention, source_raw):
        """Ids [b, t] → (text [b], tokens [b, t]); unknown words copied from the source."""
        tokens = tf.gather(self.target_tokens, ids)
        attended = tf.argmax(attention, axis=-1, output_type=tf.int32)
        copied = tf.gather(source_raw, attended, batch_dims=1)
        tokens = tf.where(tf.equal(ids, UNK_ID), copied, tokens)
        keep = tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, END_ID) & tf.not_equal(tokens, "")
        words = tf.ragged.boolean_mask(tokens, keep)
        return text.detokenize(words), tf.where(keep, tokens, "")

    def _outputs(self, text, ids, attention, raw, **extra):
        attention = decoding.fit_memory_columns(attention, tf.shape(raw)[1])
        translation, target_tokens = self._to_text(ids, attention, raw)
        outputs = {
            "translation": translation,
            "attention": attention,
            "source_tokens": raw,
            "target_tokens": target_tokens,
            **extra,
        }
        n = tf.shape(text)[0]  # drops the stand-in row of an empty batch
        return {k: v[:n] for k, v in outputs.items()}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        raw, max_lengths, step, state, starts = self._search_inputs(text)
        ids, attention = decoding.greedy_search(
            step, state, starts, max_lengths, END_ID, PAD_ID, (PAD_ID, START_ID)
        )
        return self._outputs(text, ids, attention, raw)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ]
    )
    def translate_sample(self, text, temperature):
        raw, max_lengths, step, state, starts = self._search_inputs(text)
        ids, attention = decoding.sample_search(
            step, state, starts, max_lengths, temperature, END_ID, PAD_ID, (PAD_ID, START_ID)
        )
        return self._outputs(text, ids, attention, raw)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
            tf.TensorSpec([], tf.float32, name="length_penalty"),
        ]
    )
    def translate_beam(self, text, beam_size, length_penalty):
        beam_size = tf.clip_by_value(beam_size, 1, MAX_BEAM)
        raw, max_lengths, step, state, starts = self._search_inputs(text)
        ids, scores, attention = decoding.beam_search(
            step,
            state,
            starts,
            max_lengths,
            beam_size,
            length_penalty,
            END_ID,
            PAD_ID,
            (PAD_ID, START_ID),
        )
        batch, n, steps = tf.shape(ids)[0], tf.shape(ids)[1], tf.shape(ids)[2]
        candidates, _ = self._to_text(
            tf.reshape(ids, [batch * n, steps]),
            decoding.fit_memory_columns(tf.reshape(attention, [batch * n, steps, -1]), tf.shape(raw)[1]),
            tf.repeat(raw, n, axis=0),
        )
        return self._outputs(
            text,
            ids[:, 0],
            attention[:, 0],
            raw,
            candidates=tf.reshape(candidates, [batch, n]),
            scores=scores,
        )

    def save(self, path: str | Path) -> None:
        tf.saved_model.save(
            self,
            str(path),
            signatures={
                "translate": self.translate,
                "translate_beam": self.translate_beam,
                "translate_sample": self.translate_sample,
                "serving_default": self.translate,
            },
        )
