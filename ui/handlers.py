"""Pure functions behind the demo: plain inputs in, plain outputs out, no Gradio objects."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from seq2seq_app.captioning.captioner_api import LoadedCaptioner
from seq2seq_app.core.images import MAX_PIXELS
from seq2seq_app.sentiment.sentiment_api import LoadedSentimentClassifier
from seq2seq_app.translation.translator_api import LoadedTranslator
from ui import catalog, views

MAX_TEXT_CHARS = 2000
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Exports older than sentence splitting cut every input at this many words.
OLD_MAX_SOURCE_TOKENS = 100
HEATMAP_ROWS, HEATMAP_COLUMNS = 60, 80
DECODING_MODES = ("greedy", "beam", "sample")
CAPTION_MODES = ("greedy", "beam")
SENTIMENT_MODELS = ("auto", "sentiment_nsmc", "sentiment_imdb")
TRANSLATORS = ("translate", "translate_word")  # catalog keys, in the order the page offers them
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


class InputError(ValueError):
    """A user input the app refuses, with a message to show in the page."""


def check_text(text: str | None, what: str) -> str:
    """The text, or an InputError for empty, whitespace-only or over-long text."""
    if text is None or not text.strip():
        raise InputError(f"Type a {what} first.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The {what} is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}.")
    return text


def translate(
    translator: LoadedTranslator | None,
    text: str,
    mode: str = "greedy",
    beam_size: int = 4,
    length_penalty: float = 0.6,
    temperature: float = 0.7,
) -> tuple[str, list[list], str]:
    """Returns (translation, n-best rows of [score, candidate], attention heatmap as HTML)."""
    if translator is None:
        raise InputError(catalog.not_installed("translate"))
    check_text(text, "sentence")
    if mode not in DECODING_MODES:
        raise InputError(f"Unknown decoding mode {mode!r}.")
    if mode == "beam":
        out = translator.run([text], beam_size=int(beam_size), length_penalty=float(length_penalty))
        rows = [
            [round(float(s), 3), c.decode("utf-8")]
            for c, s in zip(out["candidates"][0], out["scores"][0])
            if s > -1e8
        ]
    elif mode == "sample":
        out = translator.run([text], temperature=float(temperature))
        rows = []
    else:
        out = translator.run([text])
        rows = []
    source = [t.decode("utf-8") for t in out["source_tokens"][0]]
    words = [t for t in source if t]  # each sentence's last column is its end marker
    notes = _unknown_note(translator, words, [w.lower() for w in words], "Spanish vocabulary", "copied as is")
    notes += _cut_note(out, words, source.count(""), translator.limits)
    # Produced rows (one per output word) sum to 1 and come first; padding rows are zero.
    attention = np.nan_to_num(out["attention"][0])
    produced = int(np.cumprod(attention.sum(-1) > 0.5).sum())
    target = [t.decode("utf-8") for t in out["target_tokens"][0][:produced]]
    # Sentences are blocks on the diagonal; a long text shows its first ones rather than a table
    # that grows with the square of its length.
    rows_shown, columns_shown = min(produced, HEATMAP_ROWS), min(len(source), HEATMAP_COLUMNS)
    heatmap = views.attention_heatmap(
        source[:columns_shown], target[:rows_shown], attention[:rows_shown, :columns_shown]
    )
    if rows_shown < produced or columns_shown < len(source):
        heatmap = (
            views.notice(
                f"The heatmap shows the first {rows_shown} output words and {columns_shown} source tokens.",
                "ignored",
            )
            + heatmap
        )
    return out["translation"][0].decode("utf-8"), rows, notes + heatmap


def _cut_note(out: dict, words: list[str], units: int, limits: dict[str, int]) -> str:
    """A notice saying what of the text was not translated or not finished, or "" for nothing;
    `limits` are the export's caps (`LoadedTranslator.limits`)."""
    if "truncated" not in out:  # exports older than sentence splitting cut every input at 100 words
        cut = len(words) >= OLD_MAX_SOURCE_TOKENS
        return (
            views.notice(f"The model read only the first {OLD_MAX_SOURCE_TOKENS} words.", "cut")
            if cut
            else ""
        )
    if not out["truncated"][0]:
        return ""
    max_words, max_units = limits["max_text_tokens"], limits["max_text_units"]
    if len(words) >= max_words or units >= max_units:
        return views.notice(
            f"The model translates at most {max_words:,} words and punctuation marks and "
            f"{max_units} sentences of a text: it stopped after “{words[-1]}”.",
            "cut",
        )
    return views.notice(
        "A sentence's translation reached the length limit (about twice its length, plus 10) before "
        "the model finished it, so its end is missing.",
        "cut",
    )


def _unknown_note(model, tokens: list[str], lookups: list[str], vocabulary: str, fate: str) -> str:
    """A notice naming the tokens outside the model's vocabulary (each once), or "" for none."""
    known = model.in_vocabulary(lookups) or [True] * len(tokens)
    unknown = list(dict.fromkeys(t for t, k in zip(tokens, known) if not k))
    if not unknown:
        return ""
    shown = ", ".join(f"“{t}”" for t in unknown[:12]) + (" …" if len(unknown) > 12 else "")
    return views.notice(f"Not in the model's {vocabulary} ({fate}): {shown}", "ignored")


def pick_sentiment_model(text: str, choice: str = "auto") -> str:
    """The catalog key of the classifier for this text: `auto` picks NSMC for Korean, IMDB otherwise."""
    if choice not in SENTIMENT_MODELS:
        raise InputError(f"Unknown sentiment model {choice!r}; choose one of {', '.join(SENTIMENT_MODELS)}.")
    if choice != "auto":
        return choice
    return "sentiment_nsmc" if _HANGUL.search(text) else "sentiment_imdb"


def classify(
    classifiers: dict[str, LoadedSentimentClassifier | None], text: str, choice: str = "auto"
) -> tuple[str, str, pd.DataFrame]:
    """Returns (verdict, tokens coloured by how each moved the score as HTML, trajectory table).

    The trajectory has columns position, token, score (the score after reading that token). The
    move of token t is score(t) − score(t − 1), starting from 0.5 (no evidence).
    """
    check_text(text, "review")
    key = pick_sentiment_model(text, choice)
    classifier = classifiers.get(key)
    if classifier is None:
        raise InputError(catalog.not_installed(key))
    result = classifier.classify(text)
    title = catalog.ENTRIES[key].title
    known = classifier.in_vocabulary(result["tokens"]) or [True] * len(result["tokens"])
    if not any(known):  # a verdict here would be the model's prior, not a reading of the review
        empty = pd.DataFrame({"position": [], "token": [], "score": []})
        return (
            f"nothing to score: none of this review's characters or words is in the {title} model's "
            "vocabulary",
            views.notice(
                "Nothing in this review is something the model can read, so it gives no verdict.", "nothing"
            ),
            empty,
        )
    notes = _unknown_note(classifier, result["tokens"], result["tokens"], "vocabulary", "read as unknown")
    limit = classifier.card.get("hyperparameters", {}).get("max_tokens")
    if limit and len(result["tokens"]) >= limit:
        notes += views.notice(
            f"The model reads the first {limit} tokens: it stopped after “{result['tokens'][-1]}”, and the "
            "rest of the review was not scored.",
            "cut",
        )
    scores = result["token_scores"]
    moves = [s - p for s, p in zip(scores, [0.5] + scores[:-1])]
    verdict = f"{result['label']} ({result['score']:.1%} positive) · {title}"
    trajectory = pd.DataFrame(
        {
            "position": range(1, len(scores) + 1),
            "token": result["tokens"],
            "score": [round(s, 4) for s in scores],
        }
    )
    return verdict, notes + views.token_moves(result["tokens"], moves), trajectory


def read_image(source: bytes | str | Path | None) -> bytes:
    """The upload's bytes, or an InputError for no file or one over the size limit (checked first)."""
    if source is None or source == b"" or source == "":
        raise InputError("Upload an image (JPEG, PNG, GIF or BMP).")
    size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise InputError(f"The file is {size / 1e6:.1f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB.")
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def caption(
    captioner: LoadedCaptioner | None,
    image: bytes | str | Path | None,
    mode: str = "greedy",
    beam_size: int = 3,
) -> tuple[str, str]:
    """Returns (caption, HTML showing where the model looked for each word) for image bytes or a file."""
    if captioner is None:
        raise InputError(catalog.not_installed("caption"))
    image = read_image(image)
    if mode not in CAPTION_MODES:
        raise InputError(f"Unknown decoding mode {mode!r}.")
    try:
        out = captioner.run([image], int(beam_size) if mode == "beam" else None)
    except tf.errors.InvalidArgumentError as e:  # bytes that start like an image but do not decode
        raise InputError("That file is not a readable image (corrupt or truncated).") from e
    status = out["status"][0].decode()
    if status != "ok":
        what = "not a readable image (corrupt or truncated)" if status == "corrupt" else status
        raise InputError(
            f"That file is {what}: upload a JPEG, PNG, GIF or 24-bit BMP image of at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels."
        )
    words = [w.decode("utf-8") for w in out["tokens"][0] if w]
    try:
        overlays = views.attention_overlays(image, out["attention"][0][: len(words)], words)
    except OSError:  # e.g. a truncated JPEG: the model recovered it, the image library will not
        overlays = views.notice(
            "Only part of this image could be read (the file is truncated or damaged): the caption "
            "describes only what decoded and may well be wrong; no overlays are drawn.",
            "partial-image",
        )
    return out["caption"][0].decode("utf-8"), overlays


def warm_up(models: dict) -> None:
    """Calls every signature once (greedy, beam, sample, caption, caption_beam, classify) through
    its handler, so the first user's request is not the one that waits for TensorFlow to trace it."""
    from ui.demo_inputs import REVIEW_EXAMPLES, TRANSLATE_EXAMPLES, example_images

    for key in TRANSLATORS:
        if models.get(key) is not None:
            for mode in DECODING_MODES:
                translate(models[key], TRANSLATE_EXAMPLES[0], mode)
    for key in ("sentiment_nsmc", "sentiment_imdb"):
        if models.get(key) is not None:
            classify(models, REVIEW_EXAMPLES[0], key)
    images = example_images()
    if models.get("caption") is not None and images:
        for mode in CAPTION_MODES:
            caption(models["caption"], images[0], mode)
