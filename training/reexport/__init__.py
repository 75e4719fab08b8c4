"""`python -m training.reexport DIR`: a shipped model re-exported through today's export code.

The decoding, text and image handling and the weights' storage live in the export, not in the
weights, so a trained model gains export fixes (the translator's repeated n-gram ban, the
captioner's per-image `corrupt` status, float16 storage) without retraining. Each task's
re-exporter rebuilds the Keras model from the card, copies the SavedModel's variables into it
(checked name by name and shape by shape), checks the rebuilt model with its exact weights
reproduces the old SavedModel's outputs, measures the new export's test metrics for the card, and
swaps the folder only when the new export is complete.

    python -m training.reexport saved_models/translate_spa_en \\
        --eval-pairs newstest2012=../shared/data/translation/spa-eng/news/newstest2012
    python -m training.reexport saved_models/caption_flickr8k
    python -m training.reexport saved_models/sentiment_nsmc
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from training.env import quiet_tensorflow

TASKS = ("translate", "caption", "sentiment")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.reexport", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a translator, captioner or sentiment SavedModel folder")
    parser.add_argument(
        "--no-repeat-ngram-size", type=int, default=3, help="translators: n-gram ban (0 turns it off)"
    )
    parser.add_argument(
        "--eval-pairs",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="translators: evaluation sets besides those of the card's training command (a NAME it "
        "names is replaced), as in python -m training.translate",
    )
    parser.add_argument("--examples", type=Path, nargs="+", help="captioners: images to compare on")
    return parser


def reexport(args: argparse.Namespace) -> dict:
    """Re-exports `args.folder` with the re-exporter of its card's task; returns the new card."""
    try:
        task = json.loads((args.folder / "model_card.json").read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError) as e:
        raise ValueError(f"{args.folder} has no readable model_card.json: {e}") from e
    if task == "translate":
        from training.reexport import translator

        if args.no_repeat_ngram_size < 0:
            raise ValueError("--no-repeat-ngram-size must be ≥ 0")
        return translator.reexport(args.folder, args.no_repeat_ngram_size, args.eval_pairs)
    if task == "caption":
        from training.reexport import captioner

        return captioner.reexport(args.folder, *([args.examples] if args.examples else []))
    if task == "sentiment":
        from training.reexport import sentiment

        return sentiment.reexport(args.folder)
    raise ValueError(f"{args.folder} holds a {task!r} model; only {', '.join(TASKS)} models are re-exported")


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow()
    try:
        card = reexport(build_parser().parse_args(argv))
    except ValueError as e:
        raise SystemExit(str(e)) from e
    print(f"re-exported: {json.dumps(card['export'].get('reexported', {}), ensure_ascii=False)}")
