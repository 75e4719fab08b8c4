"""Python API over an exported captioner SavedModel (the same artifact any TF program loads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

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
            ValueError: some inputs are not readable images; the message names every one (its path,
                or its position for bytes) and says why ("not an image", "corrupt", "too large",
                "unsupported"). Use `run` to get the captions of the others as well.
        """
        self.check_batch_size(batch_size)
        single = isinstance(images, (bytes, str, Path))
        inputs = [images] if single else list(images)
        batch = [self._bytes(i) for i in inputs]
        captions, problems = [], []
        for i in range(0, len(batch), batch_size):
            out = self._run_each_if_needed(batch[i : i + batch_size], beam_size)
            for j, (text, status) in enumerate(zip(out["caption"], out["status"])):
                if status != b"ok":
                    problems.append(f"{_name(inputs[i + j], i + j)} is {status.decode()}")
                captions.append(text.decode("utf-8"))
        if problems:
            raise ValueError("; ".join(problems))
        return captions[0] if single else captions

    def _run_each_if_needed(self, images: list[bytes], beam_size: int | None) -> dict[str, np.ndarray]:
        """`run`, or for a SavedModel exported before images had the "corrupt" status (it fails the
        whole batch on one undecodable image) each image alone, the failing ones marked corrupt."""
        try:
            return self.run(images, beam_size)
        except tf.errors.InvalidArgumentError:
            pass
        captions, statuses = [], []
        for image in images:
            try:
                out = self.run([image], beam_size)
                captions.append(out["caption"][0])
                statuses.append(out["status"][0])
            except tf.errors.InvalidArgumentError:
                captions.append(b"")
                statuses.append(b"corrupt")
        return {"caption": np.array(captions, object), "status": np.array(statuses, object)}

    def run(self, images: Sequence[bytes], beam_size: int | None = None) -> dict[str, np.ndarray]:
        """All signature outputs (caption, attention, tokens, status, and n-best for beam) as numpy.

        Every image gets its own `status`; a refused one (e.g. a corrupt JPEG) gets the caption "".
        """
        image = tf.constant(list(images), tf.string)
        if beam_size is None:
            result = self._module.signatures["caption"](image=image)
        else:
            result = self._module.signatures["caption_beam"](
                image=image, beam_size=tf.constant(int(beam_size))
            )
        return {k: v.numpy() for k, v in result.items()}


def _name(image: ImageInput, index: int) -> str:
    """How an error names an input: its path, or its position for bytes."""
    return str(image) if isinstance(image, (str, Path)) else f"image {index}"


def load_captioner(path: str | Path | None = None) -> LoadedCaptioner:
    """Loads a captioner SavedModel (by default the shipped `caption_flickr8k`); see `LoadedCaptioner`."""
    return LoadedCaptioner(path)
