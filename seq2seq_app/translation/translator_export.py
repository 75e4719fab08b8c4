"""The translator as a string-in/string-out SavedModel (core TensorFlow ops only).

Signatures (the contract other programs rely on; see the README):
    translate(text: string[b]) -> translation: string[b], attention: float32[b, t, s],
        source_tokens: string[b, s], target_tokens: string[b, t]
    translate_beam(text, beam_size: int32[], length_penalty: float32[]) -> translation,
        candidates: string[b, n], scores: float32[b, n], attention, source_tokens, target_tokens
    translate_sample(text, temperature: float32[]) -> same outputs as translate
"""

from __future__ import annotations

import tensorflow as tf

from seq2seq_app.core import decoding, text
from seq2seq_app.core.export_base import ExportBase
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary
from seq2seq_app.translation.translator import Translator

BANNED = (PAD_ID, START_ID)


class TranslatorExport(ExportBase):
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

    SIGNATURES = ("translate", "translate_beam", "translate_sample")

    def __init__(
        self,
        model: Translator,
        source_vocab: Vocabulary,
        target_vocab: Vocabulary,
        max_output_length: int = 100,
        max_source_tokens: int = 100,
        no_repeat_ngram_size: int = 3,
    ):
        super().__init__(model)
        self._encode = model.encode
        self._step = model.decode_step
        self.source_table = source_vocab.table
        self.target_tokens = tf.constant(target_vocab.tokens)
        # Both vocabularies and the decoding setting travel in the SavedModel, so it can be
        # re-exported on its own (`python -m training.reexport`).
        self.source_vocabulary = tf.Variable(source_vocab.tokens, trainable=False, name="source_vocabulary")
        self.target_vocabulary = tf.Variable(target_vocab.tokens, trainable=False, name="target_vocabulary")
        self.decoding_no_repeat_ngram_size = tf.Variable(no_repeat_ngram_size, trainable=False)
        self.max_output_length = max_output_length
        self.max_source_tokens = max_source_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size

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
        """(source tokens [b, s], the search's keyword arguments) for a batch of texts."""
        ids, raw, max_lengths = self._encode_text(self.non_empty(texts, tf.constant([""])))
        step, state = decoding.no_repeat_ngrams(
            self._step, self._encode(ids), self.no_repeat_ngram_size, tf.reduce_max(max_lengths)
        )
        search = {
            "step_fn": step,
            "state": state,
            "start_tokens": tf.fill([tf.shape(ids)[0]], START_ID),
            "max_lengths": max_lengths,
            "end_id": END_ID,
            "pad_id": PAD_ID,
            "banned_ids": BANNED,
        }
        return raw, search

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
        return self.sliced(outputs, text)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        raw, search = self._search_inputs(text)
        ids, attention = decoding.greedy_search(**search)
        return self._outputs(text, ids, attention, raw)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ]
    )
    def translate_sample(self, text, temperature):
        raw, search = self._search_inputs(text)
        ids, attention = decoding.sample_search(temperature=temperature, **search)
        return self._outputs(text, ids, attention, raw)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
            tf.TensorSpec([], tf.float32, name="length_penalty"),
        ]
    )
    def translate_beam(self, text, beam_size, length_penalty):
        raw, search = self._search_inputs(text)
        ids, scores, attention = decoding.beam_search(
            beam_size=self.beam_size(beam_size), length_penalty=length_penalty, **search
        )
        beams = tf.shape(ids)[1]

        def to_text(flat_ids):
            flat_attention = decoding.fit_memory_columns(self.flat_beams(attention), tf.shape(raw)[1])
            return self._to_text(flat_ids, flat_attention, tf.repeat(raw, beams, axis=0))[0]

        candidates = self.candidate_texts(to_text, ids)
        return self._outputs(text, ids[:, 0], attention[:, 0], raw, candidates=candidates, scores=scores)
