"""The captioner as an image-bytes-in, caption-out SavedModel (core TensorFlow ops only).

Signatures (the contract other programs rely on; see the README):
    caption(image: string[b]) -> caption: string[b], attention: float32[b, t, regions],
        tokens: string[b, t], status: string[b]
    caption_beam(image, beam_size: int32[]) -> the same for the best candidate, plus
        candidates: string[b, n], scores: float32[b, n]

`image` holds encoded JPEG, PNG, GIF or BMP bytes of any size and mode (RGB, greyscale, RGBA,
palette). `status` is "ok", "not an image", "corrupt" (starts like an image but does not decode),
"too large" or "unsupported"; a refused image gets the caption "" and never fails the others.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.core import decoding, images, text
from seq2seq_app.core.export_base import ExportBase
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary

BANNED = (PAD_ID, START_ID, UNK_ID)  # a caption never says "[UNK]"


class CaptionerExport(ExportBase):
    """Wraps a CNN backbone, a trained `Captioner` and its vocabulary with image-level functions.

    Args:
        backbone: pixels [b, size, size, 3] (0–255) → regions, see `models.backbones`.
        model: a built `Captioner`.
        vocab: the caption vocabulary.
        image_size: the backbone's input size.
        max_length: the longest caption, in tokens.
        length_penalty: GNMT alpha used by `caption_beam`.
        float16_storage: store weight matrices in float16, half the size (see `ExportBase`).

    Example:
    >>> CaptionerExport(backbone, model, vocab).save("saved_models/caption_flickr8k")  # doctest: +SKIP
    """

    SIGNATURES = ("caption", "caption_beam")

    def __init__(
        self,
        backbone: keras.Model,
        model: Captioner,
        vocab: Vocabulary,
        image_size: int = 224,
        max_length: int = 30,
        length_penalty: float = 0.6,
        float16_storage: bool = True,
    ):
        # Every step reads the output layer as one table, which also bans BANNED (see `ExportBase`).
        super().__init__(
            backbone,
            model,
            float16_storage=float16_storage,
            output_layer=model.output_layer,
            banned_ids=BANNED,
        )
        self._regions = backbone.__call__
        self._encode = model.encode
        self._step = model.decode_step
        self.tokens = tf.constant(vocab.tokens)
        self.image_size = image_size
        self.max_length = max_length
        self.length_penalty = length_penalty

    def _search_inputs(self, image):
        """(status [b], memory width, the search's keyword arguments) for a batch of images."""
        blank = tf.reshape(tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)), [1])
        pixels, status = images.decode_images(self.non_empty(image, blank), self.image_size)
        regions, encode, step = self.with_weights(self._regions, self._encode, self._step)
        state = encode(regions(pixels))
        search = {
            "step_fn": functools.partial(step, **self.decoder_tables()),
            "state": state,
            "start_tokens": tf.fill([tf.shape(pixels)[0]], START_ID),
            # A refused image decodes no step: its caption is "".
            "max_lengths": tf.where(tf.equal(status, images.STATUS_OK), self.max_length, 0),
            "end_id": END_ID,
            "pad_id": PAD_ID,
        }
        return status, tf.shape(state.memory)[1], search

    def _to_text(self, ids):
        words = tf.gather(self.tokens, ids)
        keep = tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, END_ID)
        return text.detokenize(tf.ragged.boolean_mask(words, keep)), tf.where(keep, words, "")

    def _outputs(self, image, ids, attention, status, **extra):
        caption, tokens = self._to_text(ids)
        outputs = {"caption": caption, "attention": attention, "tokens": tokens, "status": status, **extra}
        return self.sliced(outputs, image)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")], autograph=False)
    def caption(self, image):
        status, regions, search = self._search_inputs(image)
        ids, attention = decoding.greedy_search(**search)
        return self._outputs(image, ids, decoding.fit_memory_columns(attention, regions), status)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
        ],
        autograph=False,
    )
    def caption_beam(self, image, beam_size):
        status, regions, search = self._search_inputs(image)
        ids, scores, attention = decoding.beam_search(
            beam_size=self.beam_size(beam_size), length_penalty=self.length_penalty, **search
        )
        candidates = self.candidate_texts(lambda flat_ids: self._to_text(flat_ids)[0], ids)
        best = decoding.fit_memory_columns(attention[:, 0], regions)
        return self._outputs(image, ids[:, 0], best, status, candidates=candidates, scores=scores)
