"""The captioner as an image-bytes-in, caption-out SavedModel (core TensorFlow ops only).

Signatures (the contract other programs rely on; see the README):
    caption(image: string[b]) -> caption: string[b], attention: float32[b, t, regions],
        tokens: string[b, t], status: string[b]
    caption_beam(image, beam_size: int32[]) -> the same for the best candidate, plus
        candidates: string[b, n], scores: float32[b, n]

`image` holds encoded JPEG, PNG, GIF or BMP bytes of any size and mode (RGB, greyscale, RGBA,
palette). `status` is "ok", "not an image" or "too large"; a refused image gets the caption "".
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.core import decoding, images, text
from seq2seq_app.core.vocabulary import END_ID, PAD_ID, START_ID, UNK_ID, Vocabulary

MAX_BEAM = 16
BANNED = (PAD_ID, START_ID, UNK_ID)  # a caption never says "[UNK]"


class CaptionerExport(tf.Module):
    """Wraps a CNN backbone, a trained `Captioner` and its vocabulary with image-level functions.

    Args:
        backbone: pixels [b, size, size, 3] (0–255) → regions, see `models.backbones`.
        model: a built `Captioner`.
        vocab: the caption vocabulary.
        image_size: the backbone's input size.
        max_length: the longest caption, in tokens.
        length_penalty: GNMT alpha used by `caption_beam`.

    Example:
    >>> CaptionerExport(backbone, model, vocab).save("saved_models/caption_flickr8k")  # doctest: +SKIP
    """

    def __init__(
        self,
        backbone: keras.Model,
        model: Captioner,
        vocab: Vocabulary,
        image_size: int = 224,
        max_length: int = 30,
        length_penalty: float = 0.6,
    ):
        super().__init__()
        # Raw variables only, the models through bound methods: see TranslatorExport.
        self.model_variables = [v.value for v in backbone.weights + model.weights]
        self._regions = backbone.__call__
        self._encode = model.encode
        self._step = model.decode_step
        self.tokens = tf.constant(vocab.tokens)
        self.image_size = image_size
        self.max_length = max_length
        self.length_penalty = length_penalty

    def _start(self, image):
        # An empty batch captions one blank stand-in instead (recurrent layers cannot run on
        # zero rows); `_outputs` slices the results back to the caller's batch.
        blank = tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8))
        image = tf.cond(tf.size(image) > 0, lambda: image, lambda: tf.reshape(blank, [1]))
        pixels, status = images.decode_images(image, self.image_size)
        state = self._encode(self._regions(pixels))
        batch = tf.shape(pixels)[0]
        max_lengths = tf.where(tf.equal(status, images.STATUS_OK), self.max_length, 0)
        return state, tf.fill([batch], START_ID), max_lengths, status

    def _to_text(self, ids):
        words = tf.gather(self.tokens, ids)
        keep = tf.not_equal(ids, PAD_ID) & tf.not_equal(ids, END_ID)
        return text.detokenize(tf.ragged.boolean_mask(words, keep)), tf.where(keep, words, "")

    def _outputs(self, image, ids, attention, status, **extra):
        caption, tokens = self._to_text(ids)
        outputs = {"caption": caption, "attention": attention, "tokens": tokens, "status": status, **extra}
        n = tf.shape(image)[0]  # drops the stand-in row of an empty batch
        return {k: v[:n] for k, v in outputs.items()}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image")])
    def caption(self, image):
        state, starts, max_lengths, status = self._start(image)
        ids, attention = decoding.greedy_search(
            self._step, state, starts, max_lengths, END_ID, PAD_ID, BANNED
        )
        attention = decoding.fit_memory_columns(attention, tf.shape(state[0])[1])
        return self._outputs(image, ids, attention, status)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image"),
            tf.TensorSpec([], tf.int32, name="beam_size"),
        ]
    )
    def caption_beam(self, image, beam_size):
        beam_size = tf.clip_by_value(beam_size, 1, MAX_BEAM)
        state, starts, max_lengths, status = self._start(image)
        ids, scores, attention = decoding.beam_search(
            self._step, state, starts, max_lengths, beam_size, self.length_penalty, END_ID, PAD_ID, BANNED
        )
        batch, n, steps = tf.shape(ids)[0], tf.shape(ids)[1], tf.shape(ids)[2]
        candidates, _ = self._to_text(tf.reshape(ids, [batch * n, steps]))
        best = decoding.fit_memory_columns(attention[:, 0], tf.shape(state[0])[1])
        return self._outputs(
            image, ids[:, 0], best, status, candidates=tf.reshape(candidates, [batch, n]), scores=scores
        )

    def save(self, path: str | Path) -> None:
        tf.saved_model.save(
            self,
            str(path),
            signatures={
                "caption": self.caption,
                "caption_beam": self.caption_beam,
                "serving_default": self.caption,
            },
        )
