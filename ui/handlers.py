"""Pure functions behind the demo: plain inputs in, plain outputs out, no Gradio objects."""

from __future__ import annotations

from seq2seq_app.translator_api import LoadedTranslator

MAX_TEXT_CHARS = 2000
DECODING_MODES = ("greedy", "beam", "sample")


class InputError(ValueError):
    """A user input the app refuses, with a message to show in the page."""


def translate(
    translator: LoadedTranslator | None,
    text: str,
    mode: str = "greedy",
    beam_size: int = 4,
    length_penalty: float = 0.6,
    temperature: float = 0.7,
) -> tuple[str, list[list]]:
    """Returns (translation, n-best rows of [candidate, score]) for one input text."""
    if translator is None:
        raise InputError("The translation model is not installed: run `python -m training.translate` (see README).")
    if text is None or not text.strip():
        raise InputError("Type a sentence to translate.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}.")
    if mode not in DECODING_MODES:
        raise InputError(f"Unknown decoding mode {mode!r}.")
    if mode == "beam":
        out = translator.run([text], beam_size=int(beam_size), length_penalty=float(length_penalty))
        rows = [[c.decode("utf-8"), round(float(s), 3)]
                for c, s in zip(out["candidates"][0], out["scores"][0])]
    elif mode == "sample":
        out = translator.run([text], temperature=float(temperature))
        rows = []
    else:
        out = translator.run([text])
        rows = []
    return out["translation"][0].decode("utf-8"), rows
