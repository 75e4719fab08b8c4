"""Pure functions behind the demo: plain inputs in, plain outputs out, no Gradio objects."""

from __future__ import annotations

import io

import numpy as np

from seq2seq_app.captioner_api import LoadedCaptioner
from seq2seq_app.sentiment_api import LoadedSentimentClassifier
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


def classify(classifier: LoadedSentimentClassifier | None, text: str) -> tuple[str, list[tuple[str, float]], list[list]]:
    """Returns (verdict, tokens with how much each moved the score, trajectory rows [position, token, score]).

    The movement of token t is score(t) − score(t − 1), starting from 0.5 (no evidence).
    """
    if classifier is None:
        raise InputError("The sentiment model is not installed: run `python -m training.sentiment` (see README).")
    if text is None or not text.strip():
        raise InputError("Type a review to score.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The review is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}.")
    result = classifier.classify(text)
    scores = result["token_scores"]
    moves = [round(s - p, 3) for s, p in zip(scores, [0.5] + scores[:-1])]
    verdict = f"{result['label']} ({result['score']:.1%} positive)"
    trajectory = [[i + 1, tok, round(s, 4)] for i, (tok, s) in enumerate(zip(result["tokens"], scores))]
    return verdict, list(zip(result["tokens"], moves)), trajectory


MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_OVERLAYS = 20


def caption(captioner: LoadedCaptioner | None, image: bytes | None, mode: str = "greedy",
            beam_size: int = 3) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """Returns (caption, one attention overlay per word as (RGB array, word))."""
    if captioner is None:
        raise InputError("The captioning model is not installed: run `python -m training.caption` (see README).")
    if not image:
        raise InputError("Upload an image (JPEG, PNG, GIF or BMP).")
    if len(image) > MAX_IMAGE_BYTES:
        raise InputError(f"The file is {len(image) / 1e6:.1f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB.")
    if mode not in ("greedy", "beam"):
        raise InputError(f"Unknown decoding mode {mode!r}.")
    try:
        out = captioner.run([image], int(beam_size) if mode == "beam" else None)
    except Exception as e:  # bytes that look like an image but do not decode
        raise InputError("That file is not a readable image (corrupt or truncated).") from e
    status = out["status"][0].decode()
    if status != "ok":
        raise InputError(f"That file is {status}: upload a JPEG, PNG, GIF or 24-bit BMP image of at most "
                         "50 megapixels.")
    words = [w.decode("utf-8") for w in out["tokens"][0] if w]
    try:
        overlays = attention_overlays(image, out["attention"][0][: len(words)], words)
    except OSError:  # e.g. a truncated JPEG: the model recovered it, the image library will not
        overlays = []
    return out["caption"][0].decode("utf-8"), overlays


def attention_overlays(image: bytes, attention: np.ndarray, words: list[str]) -> list[tuple[np.ndarray, str]]:
    """The image (at most 384 px) tinted red where the model looked for each word."""
    from PIL import Image

    picture = Image.open(io.BytesIO(image))
    picture.draft("RGB", (384, 384))  # JPEGs decode straight at a small size
    picture = picture.convert("RGB")
    picture.thumbnail((384, 384))
    base = np.asarray(picture, np.float32)
    side = int(round(attention.shape[-1] ** 0.5))
    overlays = []
    for weights, word in list(zip(attention, words))[:MAX_OVERLAYS]:
        grid = weights.reshape(side, side) / max(float(weights.max()), 1e-9)
        heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize(picture.size, Image.BILINEAR),
                          np.float32)[..., None] / 255.0
        tinted = base * (0.35 + 0.65 * heat) + np.array([255.0, 0.0, 0.0]) * 0.35 * heat
        overlays.append((np.clip(tinted, 0, 255).astype(np.uint8), word))
    return overlays
