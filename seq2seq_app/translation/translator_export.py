"""The translator as a string-in/string-out SavedModel (core TensorFlow ops only).

Signatures (the contract other programs rely on; see docs/savedmodels.md):
    translate(text: string[b]) -> translation: string[b], attention: float32[b, t, s],
        source_tokens: string[b, s], target_tokens: string[b, t], truncated: bool[b]
    translate_beam(text, beam_size: int32[], length_penalty: float32[]) -> the translate outputs,
        candidates: string[b, n], scores: float32[b, n]
    translate_sample(text, temperature: float32[]) -> same outputs as translate

Each text is split into sentences in the graph and every sentence is translated on its own (a
sentence longer than `max_source_tokens` words in pieces of that many words), so a paragraph is
never cut; the outputs join the sentences back into one row per text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf

from seq2seq_app.core import decoding, text
from seq2seq_app.core.export_base import ExportBase
from seq2seq_app.core.function_cond import function_cond
from seq2seq_app.core.subword_vocabulary import CONTINUATION, SubwordVocabulary
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, RESERVED, START_ID, UNK, UNK_ID, Vocabulary
from seq2seq_app.translation.translator import Translator

BANNED = (PAD_ID, START_ID)
SEARCH_CHUNK = 32  # units searched together (see `TranslatorExport._search`)
BEAM_OUTPUTS = (  # ids, scores, attention
    tf.TensorSpec([None, None, None], tf.int32),
    tf.TensorSpec([None, None]),
    tf.TensorSpec([None, None, None, None]),
)
PASS_AT = 0.5  # attention share above which a target word counts as written for the unreadable word
# What may open a sentence before its first word (see `_names_copied`).
OPENING = r"[\p{Ps}\p{Pi}¿¡\"'—–-]*"
# Tokens that are not words of their own (see `_encode_text`'s `unreadable`).
UNREAD_ALONE = r"[\p{M}\p{Cf}\p{Sk}\p{P}\p{Sm}\x{1F1E6}-\x{1F1FF}\x{1F3FB}-\x{1F3FF}]*"


class _Source(NamedTuple):
    """A batch of source units (sentences, or pieces of over-long ones) as the searches and
    `_to_text` need them, and the text each unit came from."""

    ids: tf.Tensor  # int32 [b, s_ids], END after each sentence's words (word mode) or pieces
    words: tf.Tensor  # string [b, s_words], the cased source words, "" aligned with END and padding
    max_lengths: tf.Tensor  # int32 [b], each sentence's output cap in target ids
    # float32 [b, s_ids, s_words]: 1 where an id column belongs to a word column; None in word mode,
    # where ids and words align one to one.
    columns: tf.Tensor | None
    # bool [b, s_words]: the word holds a character the source vocabulary never had (subword mode;
    # None in word mode), so the model cannot have read it.
    unreadable: tf.Tensor | None
    text_of: tf.Tensor  # int64 [b], the input text the unit belongs to
    cut: tf.Tensor  # bool [texts], whether a text's words past `max_text_tokens` were dropped


def _texts(source: _Source) -> tf.Tensor:
    """The number of input texts the units came from (int64 scalar)."""
    return tf.shape(source.cut, out_type=tf.int64)[0]


def _ended(values: tf.RaggedTensor, end, pad) -> tf.Tensor:
    """Dense [rows, longest + 1]: each row's values, then `end` (a scalar or one per row,
    [rows, 1]), then `pad`. One densifying op, where a ragged concatenation of the end column
    took some ninety."""
    shape = values.bounding_shape() + tf.constant([0, 1], values.row_splits.dtype)
    dense = values.to_tensor(default_value=pad, shape=shape)
    return tf.where(tf.equal(tf.range(shape[1]), values.row_lengths()[:, None]), end, dense)


def _from_group_start(values, groups, n_groups):
    """`values` [k] less the smallest value in each one's group [k]: a running position becomes the
    position within the group, as groups (the texts) are contiguous and in order."""
    return values - tf.gather(tf.math.unsorted_segment_min(values, groups, n_groups), groups)


def _again(marked, attended, before=None):
    """bool [b, t]: the `marked` target words that attend most to the same source word (`attended`
    [b, t]) as an earlier word of `before` (by default the marked ones)."""
    before = marked if before is None else before
    positions = tf.range(tf.shape(attended)[1])
    earlier = positions[:, None] > positions[None, :]  # [i, j]: j comes before i
    same = before[:, None, :] & tf.equal(attended[:, :, None], attended[:, None, :])
    return marked & tf.reduce_any(same & earlier[None], axis=2)


class TranslatorExport(ExportBase):
    """Wraps a trained `Translator` and its vocabularies with text-level `tf.function`s.

    The text unit follows the vocabularies: word `Vocabulary`s look words up; `SubwordVocabulary`s
    segment the source words into pieces in the graph and join the output pieces back to words.
    Either way the signatures speak words: `source_tokens` and `target_tokens` are words and
    `attention` is [b, target words, source words] (piece attention merged: summed over a source
    word's pieces, averaged over a target word's pieces), so callers never see pieces.

    Unknown target words, and target words holding an unknown piece, are replaced by the source
    word the decoder attended to most when it produced them (Luong et al., 2015), so names and
    numbers come through instead of `[UNK]`.

    Args:
        model: a built `Translator`.
        source_vocab: vocabulary of lowercased source words or pieces.
        target_vocab: vocabulary of target words or pieces (the same kind as `source_vocab`).
        max_output_length: hard cap on output tokens (words or pieces).
        max_source_tokens: a sentence longer than this many words (and punctuation marks) is
            translated in consecutive pieces of this many, so nothing is cut; 50 is the longest
            sentence the shipped translators were trained on.
        max_text_tokens: words past a text's first this many are dropped (`truncated` says so),
            which bounds the outputs' size: attention is [texts, target words, source words].
        max_text_units: so are sentences (and pieces of long ones) past a text's first this many,
            which bounds the search's rows.
        no_repeat_ngram_size: no output repeats an n-gram of this many tokens (words or pieces; 0
            turns it off); 3 removed every loop from news sentences at no cost in BLEU (see
            docs/translation.md). With pieces, an n-gram inside one word may repeat.
        copy_names: replace a name the model spelled out piece by piece with the source name
            (subword mode, with `target_words`; see `_names_copied`).
        target_words: the target side's words, lowercased: what the model writes from among them
            is its own translation, never replaced by a source name.
        float16_storage: store weight matrices in float16, half the size (see `ExportBase`).

    Example:
    >>> TranslatorExport(model, src_vocab, tgt_vocab).save("saved_models/translate_spa_en")  # doctest: +SKIP
    """

    SIGNATURES = ("translate", "translate_beam", "translate_sample")

    def __init__(
        self,
        model: Translator,
        source_vocab: Vocabulary | SubwordVocabulary,
        target_vocab: Vocabulary | SubwordVocabulary,
        max_output_length: int = 100,
        max_source_tokens: int = 50,
        max_text_tokens: int = 1000,
        max_text_units: int = 32,
        no_repeat_ngram_size: int = 3,
        copy_names: bool = True,
        target_words: Vocabulary | None = None,
        float16_storage: bool = True,
    ):
        if type(source_vocab) is not type(target_vocab):
            raise TypeError("source and target vocabularies must be of one kind (both words or both pieces)")
        # Every step reads the output layer as one table, which also bans BANNED (see `ExportBase`).
        super().__init__(
            model, float16_storage=float16_storage, output_layer=model.output_layer, banned_ids=BANNED
        )
        self._encode = model.encode
        self._step = model.decode_step
        self.subwords = source_vocab if isinstance(source_vocab, SubwordVocabulary) else None
        self.source_table = source_vocab.table if self.subwords is None else self.subwords.vocab.table
        self.target_tokens = tf.constant(target_vocab.tokens)
        # Both vocabularies, their unit and the decoding setting travel in the SavedModel, so it can
        # be re-exported on its own (`python -m training.reexport`).
        self.source_vocabulary = tf.Variable(source_vocab.tokens, trainable=False, name="source_vocabulary")
        self.target_vocabulary = tf.Variable(target_vocab.tokens, trainable=False, name="target_vocabulary")
        self.text_unit = tf.Variable("word" if self.subwords is None else "subword", trainable=False)
        self.decoding_no_repeat_ngram_size = tf.Variable(no_repeat_ngram_size, trainable=False)
        self.copy_names = copy_names and self.subwords is not None and target_words is not None
        self.decoding_copy_names = tf.Variable(self.copy_names, trainable=False)
        if self.copy_names:
            # Carried like the vocabularies, for re-export.
            words = tf.constant(target_words.tokens[len(RESERVED) :], tf.string)  # string even if empty
            self.target_words = tf.Variable(words, trainable=False, name="target_words")
            self.target_word_table = target_words.table
        self.max_output_length = max_output_length
        self.max_source_tokens = max_source_tokens
        if max_text_tokens < max_source_tokens:
            raise ValueError("max_text_tokens must be at least max_source_tokens")
        self.max_text_tokens = max_text_tokens
        self.max_text_units = max_text_units
        # The caps travel in the SavedModel as well, so the app and the lab read each model's own
        # (`LoadedTranslator.limits`) rather than repeat them.
        self.limits = {
            name: tf.Variable(value, trainable=False, name=name)
            for name, value in (
                ("max_output_length", max_output_length),
                ("max_source_tokens", max_source_tokens),
                ("max_text_tokens", max_text_tokens),
                ("max_text_units", max_text_units),
            )
        }
        self.no_repeat_ngram_size = no_repeat_ngram_size
        # Pieces may repeat within a word (a name said twice), not across words (see
        # `decoding.no_repeat_ngrams`).
        self.word_starts = (
            None
            if self.subwords is None
            else tf.constant([not t.startswith(CONTINUATION) for t in target_vocab.tokens])
        )

    def _units(self, texts) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """(cased words [units, (words)], the text of each unit [units], whether each text was cut
        [texts]): every text split into its sentences and every sentence into pieces of at most
        `max_source_tokens` words, up to the text's first `max_text_tokens` words and
        `max_text_units` units. A text with no
        words keeps one empty unit, so every text has an output row."""
        n_texts = tf.shape(texts, out_type=tf.int64)[0]
        texts = text.without_markers(texts)  # both paths below must see the text split_sentences sees
        sentences = text.split_sentences(texts)
        whole = text.tokenize(texts, lowercase=False)
        # The usual batch, every text one sentence of at most `max_source_tokens` words, is its own
        # units: the general split below costs about as much as tokenising again.
        simple = tf.reduce_all(sentences.row_lengths() <= 1) & tf.reduce_all(
            whole.row_lengths() <= self.max_source_tokens
        )
        return function_cond(
            simple,
            lambda: (whole, tf.range(n_texts), tf.zeros([n_texts], tf.bool)),
            lambda: self._split_units(sentences, n_texts),
        )

    def _split_units(self, sentences, n_texts) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
        """`_units` for any batch, from its sentences [texts, (sentences)]."""
        counts = tf.maximum(sentences.row_lengths(), 1)
        present = tf.sequence_mask(counts, tf.reduce_max(counts))
        flat = tf.boolean_mask(sentences.to_tensor(default_value="", shape=tf.shape(present)), present)
        sentence_text = tf.where(present)[:, 0]
        words = text.tokenize(flat, lowercase=False)
        # Where each sentence starts within its text: the words past the text's cap are dropped.
        lengths = words.row_lengths()
        offset = _from_group_start(tf.cumsum(lengths, exclusive=True), sentence_text, n_texts)
        kept = tf.clip_by_value(self.max_text_tokens - offset, 0, lengths)
        cut = tf.math.unsorted_segment_max(tf.cast(kept < lengths, tf.int32), sentence_text, n_texts) > 0
        position = tf.ragged.range(lengths)
        words = tf.ragged.boolean_mask(words, position < kept[:, None])
        starts_inside = offset < self.max_text_tokens  # a text's first sentence always does
        words = tf.ragged.boolean_mask(words, starts_inside)
        sentence_text = tf.boolean_mask(sentence_text, starts_inside)
        lengths = words.row_lengths()
        pieces = tf.maximum((lengths + self.max_source_tokens - 1) // self.max_source_tokens, 1)
        rows = tf.repeat(tf.cumsum(pieces, exclusive=True), lengths)
        rows += tf.ragged.range(lengths).flat_values // self.max_source_tokens
        units = tf.RaggedTensor.from_value_rowids(words.flat_values, rows, nrows=tf.reduce_sum(pieces))
        # Units past a text's first `max_text_units` are dropped too: every unit is a row of the
        # search (times the beam), so a text of hundreds of tiny sentences would cost hundreds of rows.
        unit_text = tf.repeat(sentence_text, pieces)
        kept_units = _from_group_start(tf.range(units.nrows()), unit_text, n_texts) < self.max_text_units
        cut |= tf.math.unsorted_segment_max(tf.cast(~kept_units, tf.int32), unit_text, n_texts) > 0
        return tf.ragged.boolean_mask(units, kept_units), tf.boolean_mask(unit_text, kept_units), cut

    # One function for every signature: traced once, not once per signature, which halves the
    # time to save and load the export.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def _encode_text(self, texts) -> _Source:
        cased, text_of, cut = self._units(texts)
        lowered = text.lowercase_tokens(cased)
        words = _ended(cased, "", "")  # "" aligned with END
        columns = unreadable = None
        if self.subwords is None:
            ids = tf.cast(self.source_table.lookup(lowered), tf.int32)
        else:
            ids, _, word_index = self.subwords.segment(lowered)
            # END's column is the "" after each sentence's words; padding (-1) belongs to none.
            unknown = _ended(tf.equal(ids, UNK_ID), False, False)
            word_index = _ended(word_index, tf.cast(lowered.row_lengths(), tf.int32)[:, None], -1)
            columns = tf.one_hot(word_index, tf.shape(words)[1])
            unreadable = tf.matmul(tf.cast(unknown, tf.float32)[:, None, :], columns)[:, 0] > 0
            # Marks, joiners, variation selectors, skin tones, flag halves, punctuation and math
            # signs the model never saw stay unread, as before: passed through on their own they
            # would break an emoji ("❤️" into "❤" and a stray selector) or a flag in two.
            unreadable &= ~tf.strings.regex_full_match(words, UNREAD_ALONE)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        # Outputs may be about twice as long as inputs, never longer than the cap; nothing in,
        # nothing out.
        max_lengths = tf.where(lengths > 0, tf.minimum(2 * lengths + 10, self.max_output_length), 0)
        ids = _ended(ids, END_ID, PAD_ID)  # every source ends with END
        return _Source(ids, words, max_lengths, columns, unreadable, text_of, cut)

    def _search(
        self, texts, search: Callable[..., tuple], chunks_of: Sequence[tf.TensorSpec] = ()
    ) -> tuple[_Source, tuple]:
        """(the source, `search(**kwargs)`'s outputs) for a batch of texts.

        Given the search's output specs (`chunks_of`), the units are searched in chunks of
        `SEARCH_CHUNK` of similar length, side by side: a beam search's steps are too small to
        keep two cores busy (profiled at 64 sentences, one core sat idle 37 % of the time),
        independent chunks run at once (`tf.while_loop` runs up to 10 iterations together), and
        a chunk of similar lengths ends sooner than the batch would. Beam 4 over batches of 64
        translated 1.10x the sentences a second. Greedy search measured 0.985x (and 1.05x the
        time for one sentence), so it searches the batch whole. Rows never interact in a
        search, so each unit decodes as in one search over the batch, up to float rounding where
        a product's kernel changes with its number of rows. The outputs come back in the batch's
        order, as wide as one search's: padded over time to the longest chunk's, attention over
        memory to the batch's.
        """
        source = self._encode_text(self.non_empty(texts, tf.constant([""])))
        encode, step = self.with_weights(self._encode, self._step)
        tables = self.decoder_tables()

        def run(ids, max_lengths):
            step_fn, state = decoding.no_repeat_ngrams(
                functools.partial(step, **tables),
                encode(ids),
                self.no_repeat_ngram_size,
                tf.reduce_max(max_lengths),
                self.word_starts,
            )
            start = tf.fill([tf.shape(ids)[0]], START_ID)
            return search(
                step_fn=step_fn,
                state=state,
                start_tokens=start,
                max_lengths=max_lengths,
                end_id=END_ID,
                pad_id=PAD_ID,
            )

        if not chunks_of:
            return source, run(source.ids, source.max_lengths)
        batch, memory = tf.shape(source.ids)[0], tf.shape(source.ids)[1]
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(source.ids, PAD_ID), tf.int32), axis=1)
        order = tf.argsort(lengths, stable=True)
        steps = tf.reduce_max(source.max_lengths)

        def body(i, width, arrays):
            rows = order[i * SEARCH_CHUNK : (i + 1) * SEARCH_CHUNK]  # the last chunk may be short
            ids = tf.gather(source.ids, rows)[:, : tf.reduce_max(tf.gather(lengths, rows))]
            outputs = run(ids, tf.gather(source.max_lengths, rows))
            width = tf.maximum(width, tf.shape(outputs[0])[-1])
            return i + 1, width, [a.write(i, _padded(x, steps, memory)) for a, x in zip(arrays, outputs)]

        chunks = (batch + SEARCH_CHUNK - 1) // SEARCH_CHUNK
        arrays = [
            tf.TensorArray(x.dtype, size=chunks, infer_shape=False, element_shape=x.shape) for x in chunks_of
        ]
        _, width, arrays = tf.while_loop(lambda i, *_: i < chunks, body, (0, 0, arrays))
        back = tf.math.invert_permutation(order)
        return source, tuple(tf.gather(_trimmed(a.concat(), width), back) for a in arrays)

    @staticmethod
    def _repeated(source: _Source, times) -> _Source:
        """Each unit's source `times` times in a row, for the flattened beams."""
        per_unit = {
            name: getattr(source, name) for name in ("ids", "words", "max_lengths", "columns", "unreadable")
        }
        # text_of and cut stay as they are: the flattened beams are joined back per unit first.
        return source._replace(
            **{name: tf.repeat(value, times, axis=0) for name, value in per_unit.items() if value is not None}
        )

    def _to_text(self, ids, attention, source: _Source):
        """Ids [b, t] and attention [b, t, s_ids] → (text [b], target words [b, t_words], word
        attention [b, t_words, s_words]); unknown words copied from the source."""
        if self.subwords is not None:
            return self._pieces_to_text(ids, attention, source)
        attention = decoding.fit_memory_columns(attention, tf.shape(source.words)[1])
        tokens = tf.gather(self.target_tokens, ids)
        attended = tf.argmax(attention, axis=-1, output_type=tf.int32)
        copied = tf.gather(source.words, attended, batch_dims=1)
        tokens = tf.where(tf.equal(ids, UNK_ID), copied, tokens)
        keep = tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, END_ID) & tf.not_equal(tokens, "")
        words = tf.ragged.boolean_mask(tokens, keep)
        return text.detokenize(words), tf.where(keep, tokens, ""), attention

    def _pieces_to_text(self, ids, attention, source: _Source):
        """`_to_text` for pieces: pieces joined to words, piece attention merged to word attention."""
        attention = decoding.fit_memory_columns(attention, tf.shape(source.columns)[1])
        attention = tf.matmul(attention, source.columns)  # [b, t, s_words]: summed over a word's pieces
        pieces = tf.gather(self.target_tokens, ids)
        keep = tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, END_ID)  # a prefix of each row
        unknown = tf.equal(ids, UNK_ID) & keep
        # An unknown piece is a character the target side never had, so the model can only have
        # meant to pass something through from the source: the word holding it is replaced by the
        # most-attended source word, as word mode does for unknown words, rather than keeping a
        # character nobody can know. An unknown piece continues the word before it when both
        # attended the same source word (你好 comes out as [UNK] [UNK] on one word; "caf" [UNK] on
        # "café" is one word), otherwise it starts a word, so neither the known word before it nor a
        # second copied word is lost.
        attended = tf.argmax(attention, axis=-1, output_type=tf.int32)
        same_word = tf.pad(tf.equal(attended[:, 1:], attended[:, :-1]), [[0, 0], [1, 0]])
        continues_unknown = unknown & same_word
        pieces = tf.where(continues_unknown, CONTINUATION + UNK, pieces)
        first = tf.equal(tf.range(tf.shape(ids)[1]), 0)[None, :]
        starts = keep & (first | (tf.gather(self.word_starts, ids) & ~continues_unknown))
        word_of = tf.where(keep, tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, -1)  # [b, t]
        n_words = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)), 0)
        members = tf.transpose(tf.one_hot(word_of, n_words), [0, 2, 1])  # [b, t_words, t]
        sizes = tf.reduce_sum(members, axis=2, keepdims=True)
        word_attention = tf.matmul(members / tf.maximum(sizes, 1.0), attention)  # mean over a word's pieces
        has_unknown = tf.matmul(members, tf.cast(unknown, tf.float32)[:, :, None])[:, :, 0] > 0
        # Join's rule (a "##" piece continues the word before it) is the rule `starts` follows, so
        # the joined words line up with the rows of `word_attention`.
        joined = SubwordVocabulary.join(tf.ragged.boolean_mask(pieces, keep))
        words = tf.strings.split(joined).to_tensor(default_value="", shape=tf.shape(has_unknown))
        attended = tf.argmax(word_attention, axis=-1, output_type=tf.int32)
        named = tf.zeros_like(has_unknown)
        if self.copy_names:
            words, named = self._names_copied(words, attended, source)
        # Most batches hold no word the model cannot read: they skip the pass-through's work.
        words, word_attention = tf.cond(
            tf.reduce_any(source.unreadable),
            lambda: self._passed_through(words, word_attention, attended, has_unknown, named, source),
            lambda: (
                tf.where(has_unknown, tf.gather(source.words, attended, batch_dims=1), words),
                word_attention,
            ),
        )
        translation = text.detokenize(tf.ragged.boolean_mask(words, tf.not_equal(words, "")))
        return translation, words, word_attention

    def _names_copied(self, words, attended, source: _Source):
        """(target words [b, t_words] with the names the model spelled out piece by piece replaced by
        the source names they stand for, where it put a name [b, t_words]).

        A name the model never learned comes out as look-alike pieces ("Pedro Sánchez" as
        "Pedrof Sigzz", "Tymoshenko" as "Tyzako"). A target word becomes the source word it attends
        to most when both are capitalised words of 3+ letters starting with the same letter, the
        target word is none of the target side's words (`target_words`: what the model wrote from
        among them is its own translation, as "Sevilla" → "Seville") and the source word is a name
        rather than a sentence's capitalised first word: a token other than opening punctuation
        comes before it, or it took 2+ pieces (a sentence-initial "Presidentes" is one). A name goes
        in once: a copy of a source word that an earlier word copied or already wrote is dropped,
        so a stutter of look-alikes does not become a loop of names.
        """
        name = tf.gather(source.words, attended, batch_dims=1)
        opening = tf.pad(source.words[:, :-1], [[0, 0], [1, 0]])  # "" before the first word
        source_name = tf.strings.regex_full_match(source.words, text.NAME) & (
            ~tf.strings.regex_full_match(opening, OPENING) | (tf.reduce_sum(source.columns, axis=1) >= 2)
        )

        def lower(values):
            return tf.strings.lower(values, encoding="utf-8")

        def initial(values):
            return lower(tf.strings.substr(values, 0, 1, unit="UTF8_CHAR"))

        copied = (
            tf.strings.regex_full_match(words, text.NAME)
            & tf.equal(self.target_word_table.lookup(lower(words)), UNK_ID)
            & tf.gather(source_name, attended, batch_dims=1)
            & tf.equal(initial(words), initial(name))
        )
        again = _again(copied, attended, before=copied | tf.equal(words, name))
        return tf.where(again, "", tf.where(copied, name, words)), copied & ~again

    @staticmethod
    def _passed_through(words, word_attention, attended, has_unknown, named, source: _Source):
        """Target words and word attention with the source words the model could not read passed
        through (see `_pieces_to_text`).

        A source word with a character the model never saw ("😀", "Жанна") reached it as [UNK]:
        what it wrote while attending mostly (`PASS_AT` or more) to that word is a guess ("Жанна"
        came out "and fairy"), so the word is passed through instead (punctuation the model wrote
        stays), once: later target words passing the same source word through are dropped, and an
        unreadable word no target word was written for goes in after the word written for it or for
        the source word nearest before it ("Me llamo 山田, y tú?": "My name is 山田, and you?")
        rather than being lost. A name `_names_copied` wrote (`named`) counts as passed through.
        """
        reads_unreadable = tf.gather(source.unreadable, attended, batch_dims=1)
        punctuation = tf.strings.regex_full_match(words, r"\p{P}+")
        written = tf.not_equal(words, "")  # not the padding after a shorter output
        guessed = reads_unreadable & written & ~punctuation & (tf.reduce_max(word_attention, -1) >= PASS_AT)
        passed = guessed | named
        copied = has_unknown | passed
        positions = tf.range(tf.shape(attended)[1])
        # Only pass-throughs are deduplicated: an [UNK] word copied twice from a readable word is
        # kept as the other path keeps it, so a sentence decodes the same in any batch.
        repeat = _again(passed, attended)
        words = tf.where(copied, tf.gather(source.words, attended, batch_dims=1), words)
        words = tf.where(repeat, "", words)
        width = tf.shape(source.words)[1]
        placed = tf.reduce_any(tf.one_hot(tf.where(copied, attended, -1), width) > 0, axis=1)
        missing = source.unreadable & ~placed
        extra_words = tf.ragged.boolean_mask(source.words, missing).to_tensor("")
        columns = tf.ragged.boolean_mask(tf.broadcast_to(tf.range(width), tf.shape(missing)), missing)
        columns = columns.to_tensor(-1)  # [b, k]: each missing word's source column, -1 after
        # A missing word goes in after the last target word (not punctuation) whose most-attended
        # source word is it (a guess below `PASS_AT`) or else the nearest source word before it;
        # with none, first. Sort keys: target word i 2i + 1, a missing word 2(i + 1) after word
        # i, padding last.
        t, k = tf.shape(words)[1], tf.shape(columns)[1]
        content = tf.not_equal(words, "") & ~punctuation
        before = content[:, None, :] & (attended[:, None, :] <= columns[:, :, None])  # [b, k, t]
        nearest = tf.reduce_max(tf.where(before, attended[:, None, :] * t + positions, -1), axis=2)
        after = tf.where(nearest >= 0, nearest % tf.maximum(t, 1), -1)
        last = 2 * (t + k) + 1
        keys = tf.concat(
            [tf.where(written, 2 * positions + 1, last), tf.where(columns >= 0, 2 * (after + 1), last)],
            axis=1,
        )
        index = tf.argsort(keys, axis=1, stable=True)
        words = tf.concat([words, extra_words], axis=1)
        rows = tf.concat([word_attention, tf.one_hot(columns, width)], axis=1)
        return tf.gather(words, index, batch_dims=1), tf.gather(rows, index, batch_dims=1)

    @staticmethod
    def _by_text(values, source: _Source):
        """Per-unit rows [units, (n), …] → per-text rows [texts, (units), (n), …]."""
        # Units come in the order of their texts (`_units`), so there is nothing to check.
        return tf.RaggedTensor.from_value_rowids(values, source.text_of, nrows=_texts(source), validate=False)

    @classmethod
    def _joined(cls, sentences, source: _Source):
        """Unit strings [units, …] → one string per text [texts, …], the units in order."""
        return text.join_sentences(cls._by_text(sentences, source))

    @staticmethod
    def _merged_attention(attention, target_kept, source_kept, source: _Source):
        """Unit attention [units, t, s] → text attention [texts, T, S]: each text's kept target rows
        and source columns, unit after unit, block-diagonal (a sentence attends only to itself).
        Scattered entry by entry, so the cost grows with the units' own sizes, not with T × S."""
        n = _texts(source)

        def positions(kept):
            """Each kept position's index among its text's kept positions [units, width], and the
            most any text keeps."""
            kept = tf.cast(kept, tf.int64)
            counts = tf.reduce_sum(kept, axis=1)
            start = _from_group_start(tf.cumsum(counts, exclusive=True), source.text_of, n)
            index = start[:, None] + tf.cumsum(kept, axis=1, exclusive=True)
            return index, tf.reduce_max(tf.math.unsorted_segment_sum(counts, source.text_of, n))

        rows, height = positions(target_kept)
        columns, width = positions(source_kept)
        entries = tf.where(target_kept[:, :, None] & source_kept[:, None, :])  # (unit, t, s)
        index = tf.stack(
            [
                tf.gather(source.text_of, entries[:, 0]),
                tf.gather_nd(rows, entries[:, :2]),
                tf.gather_nd(columns, tf.gather(entries, [0, 2], axis=1)),
            ],
            axis=1,
        )
        return tf.scatter_nd(index, tf.gather_nd(attention, entries), tf.stack([n, height, width]))

    @tf.function(autograph=False)  # traced once for every signature, as `_encode_text`
    def _outputs(self, ids, attention, source: _Source):
        """The signatures' outputs for every input text (the empty batch's stand-in row included)."""
        translation, target_tokens, attention = self._to_text(ids, attention, source)
        target_kept = tf.not_equal(target_tokens, "")
        # A unit's columns are its words and its END marker (an empty string).
        source_kept = tf.sequence_mask(
            tf.reduce_sum(tf.cast(tf.not_equal(source.words, ""), tf.int32), axis=1) + 1,
            tf.shape(source.words)[1],
        )

        def merged_tokens(tokens, kept):
            return self._by_text(tf.ragged.boolean_mask(tokens, kept), source).merge_dims(1, 2).to_tensor("")

        # A text is cut when words past its cap were dropped, or a unit's search hit the length cap
        # before the model wrote END.
        unit_cut = (source.max_lengths > 0) & ~tf.reduce_any(tf.equal(ids, END_ID), axis=1)
        unit_cut = tf.math.unsorted_segment_max(tf.cast(unit_cut, tf.int32), source.text_of, _texts(source))
        cut = source.cut | (unit_cut > 0)
        return {
            "translation": self._joined(translation, source),
            "attention": self._merged_attention(attention, target_kept, source_kept, source),
            "source_tokens": merged_tokens(source.words, source_kept),
            "target_tokens": merged_tokens(target_tokens, target_kept),
            "truncated": cut,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def translate(self, text):
        source, (ids, attention) = self._search(text, decoding.greedy_search)
        return self.sliced(self._outputs(ids, attention, source), text)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="temperature"),
        ],
        autograph=False,
    )
    def translate_sample(self, text, temperature):
        source, (ids, attention) = self._search(
            text, functools.partial(decoding.sample_search, temperature=self.temperature(temperature))
        )
        return self.sliced(self._outputs(ids, attention, source), text)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
            tf.TensorSpec([], tf.float32, name="length_penalty"),
        ],
        autograph=False,
    )
    def translate_beam(self, text, beam_size, length_penalty):
        source, (ids, scores, attention) = self._search(
            text,
            functools.partial(
                decoding.beam_search, beam_size=self.beam_size(beam_size), length_penalty=length_penalty
            ),
            BEAM_OUTPUTS,
        )
        beams = tf.shape(ids)[1]

        def to_text(flat_ids):
            return self._to_text(flat_ids, self.flat_beams(attention), self._repeated(source, beams))[0]

        # A paragraph's k-th candidate joins its sentences' k-th candidates; its score is their sum.
        candidates = self._joined(self.candidate_texts(to_text, ids), source)
        scores = tf.math.unsorted_segment_sum(scores, source.text_of, _texts(source))
        outputs = self._outputs(ids[:, 0], attention[:, 0], source)
        return self.sliced({**outputs, "candidates": candidates, "scores": scores}, text)


def _padded(x: tf.Tensor, steps, memory) -> tf.Tensor:
    """A search output of one chunk padded to `steps` over time and `memory` over the source:
    ids [rows, (beams,) time], scores [rows, beams] as they are, attention [rows, (beams,) time,
    memory]."""
    if x.dtype == tf.int32:
        return tf.pad(
            x, [[0, 0]] * (x.shape.rank - 1) + [[0, steps - tf.shape(x)[-1]]], constant_values=PAD_ID
        )
    if x.shape.rank == 2:
        return x
    ends = tf.shape(x)[-2:]
    return tf.pad(x, [[0, 0]] * (x.shape.rank - 2) + [[0, steps - ends[0]], [0, memory - ends[1]]])


def _trimmed(x: tf.Tensor, width) -> tf.Tensor:
    """`x` cut to `width` steps over time (the axis `_padded` padded to the batch's limit)."""
    if x.dtype == tf.int32:
        return x[..., :width]
    if x.shape.rank == 2:
        return x
    return x[..., :width, :]
