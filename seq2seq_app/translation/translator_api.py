"""Python API over an exported translator SavedModel (the same artifact any TF program loads)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.loaded_model import LoadedModel
from seq2seq_app.core.subword_vocabulary import CONTINUATION

# The caps of exports that split sentences but predate `limits` in the SavedModel.
DEFAULT_LIMITS = {
    "max_output_length": 100,
    "max_source_tokens": 50,
    "max_text_tokens": 1000,
    "max_text_units": 32,
}


def export_limits(module: tf.Module) -> dict[str, int]:
    """A loaded translator SavedModel's caps: output tokens per sentence, words per sentence piece,
    words and sentence units read from one text (see `TranslatorExport`)."""
    stored = getattr(module, "limits", {})
    return {**DEFAULT_LIMITS, **{name: int(value.numpy()) for name, value in stored.items()}}


class LoadedTranslator(LoadedModel):
    """Translates text with a SavedModel written by `TranslatorExport`.

    Args:
        path: a SavedModel directory, a shipped model's name, or None for the shipped `translate_spa_en`.

    Example:
    >>> translator = LoadedTranslator("translate_spa_en")  # doctest: +SKIP
    >>> translator.translate("¿Dónde está la biblioteca?")  # doctest: +SKIP
    'Where is the library?'
    """

    default_model = "translate_spa_en"
    train_command = "python -m training.translate"

    @property
    def limits(self) -> dict[str, int]:
        """The export's caps; see `export_limits`."""
        return export_limits(self._module)

    def translate(
        self,
        texts: str | Sequence[str],
        beam_size: int | None = None,
        length_penalty: float = 0.6,
        temperature: float | None = None,
        batch_size: int = 64,
    ) -> str | list[str]:
        """Translates one string (returns a string) or a sequence of strings (returns a list).

        Args:
            texts: source text(s).
            beam_size: beam search with this many beams; None for greedy.
            length_penalty: GNMT alpha for beam search.
            temperature: sample with this temperature instead (ignored with `beam_size`).
            batch_size: sentences per call.
        """
        self.check_batch_size(batch_size)
        single = isinstance(texts, (str, bytes))
        batch = [texts] if single else list(texts)
        outputs = []
        for i in range(0, len(batch), batch_size):
            result = self.run(batch[i : i + batch_size], beam_size, length_penalty, temperature)
            outputs.extend(t.decode("utf-8") for t in result["translation"])
        return outputs[0] if single else outputs

    def in_vocabulary(self, tokens: list[str]) -> list[bool] | None:
        """Whether each lowercased source word is known: a word-level model looks it up; for a subword
        model a word is known when every character is a piece, since it is then spelled out in
        pieces and never read as `[UNK]`."""
        unit = getattr(self._module, "text_unit", None)
        if unit is None or unit.numpy() != b"subword":
            return super().in_vocabulary(tokens)
        pieces = [[c if i == 0 else CONTINUATION + c for i, c in enumerate(t)] for t in tokens]
        found = iter(super().in_vocabulary([p for word in pieces for p in word]) or [])
        return [all([next(found) for _ in word]) for word in pieces]

    def run(
        self,
        texts: Sequence[str],
        beam_size: int | None = None,
        length_penalty: float = 0.6,
        temperature: float | None = None,
    ) -> dict[str, np.ndarray]:
        """All signature outputs (translation, attention, tokens, and n-best for beam) as numpy."""
        text = tf.constant(self.check_texts(texts), tf.string)
        if beam_size is not None:
            fn = self._module.signatures["translate_beam"]
            result = fn(
                text=text,
                beam_size=tf.constant(int(beam_size), tf.int32),
                length_penalty=tf.constant(float(length_penalty), tf.float32),
            )
        elif temperature is not None:
            fn = self._module.signatures["translate_sample"]
            result = fn(text=text, temperature=tf.constant(float(temperature), tf.float32))
        else:
            result = self._module.signatures["translate"](text=text)
        return {k: v.numpy() for k, v in result.items()}


def load_translator(path: str | Path | None = None) -> LoadedTranslator:
    """Loads a translator SavedModel (by default the shipped `translate_spa_en`); see `LoadedTranslator`."""
    return LoadedTranslator(path)
