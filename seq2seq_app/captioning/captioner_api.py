"""Python API over an exported captioner SavedModel (the same artifact any TF program loads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.captioning.data import decodes
from seq2seq_app.core.loaded_model import LoadedModel

ImageInput = bytes | str | Path


class LoadedCaptioner(LoadedModel):
    """Captions images with a SavedModel written by `seq2seq_app.captioning.captioner_export.CaptionerExport`.

    Args:
        path: a SavedModel directory, a shipped model's name, or None for the shipped `caption_flickr8k`.

    Example:
    >>> captioner = LoadedCaptioner("caption_flickr8k")  # doctest: +SKIP
    >>> captioner.caption("photo.jpg")  # doctest: +SKIP
    'A dog runs through the grass.'
    """

    default_model = "caption_flickr8k"
    train_command = "python -m training.caption"

    @staticmethod
    def _bytes(image: ImageInput) -> bytes:
        if isinstance(image, bytes):
            return image
        if isinstance(image, (str, Path)):
            return Path(image).read_bytes()
        raise TypeError(f"images must be bytes or file paths, got {type(image).__name__}")

    def caption(
        self, images: ImageInput | Sequence[ImageInput], beam_size: int | None = None, batch_size: int = 16
    ) -> str | list[str]:
        """Captions one image (returns a string) or a sequence of them (returns a list).

        Args:
            images: encoded image bytes or file paths.
            beam_size: beam search with this many beams; None for greedy.
            batch_size: images per call.

        Raises:
            ValueError: an input is not a readable image (the message says which and why).
        """
        self.check_batch_size(batch_size)
        single = isinstance(images, (bytes, str, Path))
        batch = [self._bytes(i) for i in ([images] if single else images)]
        captions: list[str] = []
        for i in range(0, len(batch), batch_size):
            chunk = batch[i : i + batch_size]
            try:
                out = self.run(chunk, beam_size)
            except tf.errors.InvalidArgumentError as e:  # bytes that start like an image but do not decode
                bad = [i + j for j, image in enumerate(chunk) if not decodes(image)]
                raise ValueError(
                    f"image {bad[0] if bad else i} is not a readable image (corrupt or truncated)"
                ) from e
            for j, (text, status) in enumerate(zip(out["caption"], out["status"])):
                if status != b"ok":
                    raise ValueError(f"image {i + j} is {status.decode()}")
                captions.append(text.decode("utf-8"))
        return captions[0] if single else captions

    def run(self, images: Sequence[bytes], beam_size: int | None = None) -> dict[str, np.ndarray]:
        """All signature outputs (caption, attention, tokens, status, and n-best for beam) as numpy.

        An image whose bytes look like an image but do not decode (e.g. a corrupt JPEG) raises
        `tf.errors.InvalidArgumentError`; use `caption` for a per-image ValueError instead.
        """
        image = tf.constant(list(images), tf.string)
        if beam_size is None:
            result = self._module.signatures["caption"](image=image)
        else:
            result = self._module.signatures["caption_beam"](
                image=image, beam_size=tf.constant(int(beam_size))
            )
        return {k: v.numpy() for k, v in result.items()}


def load_captioner(path: str | Path | None = None) -> LoadedCaptioner:
    """Loads a captioner SavedModel (by default the shipped `caption_flickr8k`); see `LoadedCaptioner`."""
    return LoadedCaptioner(path)
