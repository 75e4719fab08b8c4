"""Train, evaluate and export an image captioner: `python -m training.caption --help`.

Example (the shipped Flickr8k model; see its model card for the exact command):
    python -m training.caption --flickr8k ../shared/data/flickr8k \\
        --backbone-weights ../shared/weights/mobilenet_v2_1.0_224_imagenet_dequant_int8_no_top.h5 \\
        --export-dir saved_models/caption_flickr8k

A demo that trains in minutes on a CPU, on coloured shapes the project draws itself:
    python -m training.caption --synthetic 3000 \\
        --backbone-weights ../shared/weights/mobilenet_v2_1.0_224_imagenet_dequant_int8_no_top.h5 \\
        --export-dir saved_models/caption_shapes
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from seq2seq_app.captioning import data as data
from seq2seq_app.captioning.backbones import BACKBONES, GRID, make_backbone
from seq2seq_app.captioning.captioner import Captioner
from seq2seq_app.core import metrics
from seq2seq_app.core.text import tokenize_all
from seq2seq_app.core.vocabulary import Vocabulary
from training import flags
from training.env import quiet_tensorflow
from training.strategy import configure_precision
from training.task import Run, Task, compiled, require_nonempty, run_task


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.caption",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group("data (choose one source)")
    src.add_argument("--flickr8k", help="a Flickr8k-format folder: images/, captions.token.txt[, splits.tsv]")
    src.add_argument("--train-split", default="train", help="splits.tsv value trained on")
    src.add_argument(
        "--eval-split",
        default="dev",
        help="splits.tsv value halved into validation and test (without splits.tsv: fractions)",
    )
    src.add_argument(
        "--synthetic", type=int, default=0, help="generate this many coloured-shape images instead"
    )
    src.add_argument(
        "--tfds", help="TFDS split spec of coco_captions to train on, e.g. 'train[:20000]' (downloads)"
    )
    src.add_argument("--tfds-data-dir")
    src.add_argument("--data-name", default="images", help="for the model card, e.g. Flickr8k")
    src.add_argument("--data-credit", default="", help="data source and licence, for the model card")
    enc = parser.add_argument_group("image encoder")
    enc.add_argument(
        "--backbone",
        choices=sorted(BACKBONES) + [GRID],
        default="mobilenet_v2",
        help=f"keras.applications CNN, or {GRID} (an 8x8 colour grid without weights, for tests)",
    )
    enc.add_argument(
        "--backbone-weights",
        default="imagenet",
        help="a local .h5 file, 'imagenet' (downloads) or 'none' (random)",
    )
    enc.add_argument("--backbone-credit", default="", help="weights source and licence, for the model card")
    enc.add_argument("--image-size", type=flags.positive_int, default=224)
    enc.add_argument("--flip", action="store_true", help="also train on mirrored images (cached once)")
    m = parser.add_argument_group("decoder")
    flags.add_recurrent_flags(m, cell="lstm", embedding_dim=256, units=512, dropout=0.5)
    flags.add_decoder_flags(m)
    m.add_argument("--vocab-size", type=flags.positive_int, default=5000)
    m.add_argument("--min-count", type=int, default=3, help="rarer words are left out of the vocabulary")
    m.add_argument("--max-length", type=flags.positive_int, default=30, help="longest caption in words")
    m.add_argument("--batch-size", type=flags.positive_int, default=64)
    m.add_argument("--length-penalty", type=float, default=0.6, help="GNMT alpha of the exported beam search")
    flags.add_common_flags(parser, run_dir="runs/caption", export_dir="saved_models/caption")
    return parser


def load_splits(args: argparse.Namespace):
    """(train, validation, test) CaptionedImages and the counts of unusable inputs."""
    chosen = [bool(args.flickr8k), bool(args.synthetic), bool(args.tfds)]
    if sum(chosen) != 1:
        raise SystemExit("choose exactly one data source: --flickr8k, --synthetic or --tfds")
    try:
        if args.synthetic:
            from seq2seq_app.captioning.shapes import make_shapes_dataset

            return data.split_images(
                make_shapes_dataset(args.synthetic, seed=args.seed),
                args.validation_fraction,
                args.test_fraction,
                args.seed,
            )
        if args.tfds:
            return data.split_images(
                data.read_tfds_coco(args.tfds, args.tfds_data_dir),
                args.validation_fraction,
                args.test_fraction,
                args.seed,
            )
        if not (Path(args.flickr8k) / data.SPLITS_FILE).exists():
            return data.split_images(
                data.read_flickr8k(args.flickr8k), args.validation_fraction, args.test_fraction, args.seed
            )
        train = data.read_flickr8k(args.flickr8k, args.train_split)
        held_out = data.read_flickr8k(args.flickr8k, args.eval_split)
        test, val, _ = data.split_images(held_out, 0.5, 0.0, args.seed)  # halves: validation and test
        return train, val, test
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read the training data: {e}") from e


def backbone_weights(args: argparse.Namespace) -> str | None:
    return None if args.backbone == GRID or args.backbone_weights.lower() == "none" else args.backbone_weights


def cached_regions(
    args, run_dir: Path, backbone, name: str, images: data.CaptionedImages, flip: bool
) -> np.ndarray:
    """Backbone features of a split, computed once per run directory and image list."""
    # The file name carries a digest of the image names, so changed data is never paired with
    # stale features; the write is atomic, so a kill mid-write leaves no truncated cache.
    digest = hashlib.sha1("\n".join(images.names).encode()).hexdigest()[:12]
    path = run_dir / f"regions_{name}{'_flipped' if flip else ''}_{digest}.npy"
    if path.exists():
        return np.load(path)
    start = time.time()
    regions = data.extract_regions(backbone, images.images, args.image_size, flip=flip)
    with open(path.with_suffix(".tmp"), "wb") as f:
        np.save(f, regions)
    os.replace(path.with_suffix(".tmp"), path)
    print(
        f"cached {name}{' (mirrored)' if flip else ''} features of {len(images)} images "
        f"in {time.time() - start:.0f} s: {regions.shape}"
    )
    return regions


def build_model(args: argparse.Namespace, vocab: Vocabulary, regions: int, feature_dim: int) -> Captioner:
    model = Captioner(
        vocab_size=len(vocab),
        num_regions=regions,
        embedding_dim=args.embedding_dim,
        units=args.units,
        cell=args.cell,
        decoder_layers=args.decoder_layers,
        attention=args.attention,
        dropout=args.dropout,
        name="captioner",
    )
    return compiled(
        model,
        args.learning_rate,
        metrics.masked_cross_entropy,
        [metrics.masked_accuracy],
        example_inputs(regions, feature_dim),
    )


def example_inputs(regions: int, feature_dim: int) -> dict[str, np.ndarray]:
    return {
        "features": np.zeros((1, regions, feature_dim), np.float32),
        "target_in": np.ones((1, 2), np.int32),
    }


def evaluate(captioner, test: data.CaptionedImages, beam_size: int = 3) -> dict:
    """Corpus BLEU-1…4 of greedy and beam captions against all references of each image."""
    results = {}
    for name, beam in [("greedy", None), (f"beam{beam_size}", beam_size)]:
        start = time.time()
        hyps = captioner.caption(test.images, beam_size=beam, batch_size=32)
        scores = metrics.caption_bleu(hyps, test.captions)
        scores["distinct_captions"] = len(set(hyps))
        scores["seconds"] = round(time.time() - start, 1)
        results[name] = scores
        print(f"test {name}: {scores}")
    results["examples"] = [{"image": n, "caption": c} for n, c in zip(test.names[:5], hyps[:5])]
    return results


def prepare(args: argparse.Namespace, run_dir: Path):
    """Reads and splits the images; builds (or, when resuming, reloads) the vocabulary."""
    train, val, test = load_splits(args)
    print(
        f"images: {len(train)} train, {len(val)} validation, {len(test)} test; skipped "
        f"{train.unreadable + val.unreadable + test.unreadable} unreadable images and "
        f"{train.malformed + val.malformed + test.malformed} malformed caption lines"
    )
    require_nonempty((train, val, test), "add images or adjust the split flags")
    vocab_path = run_dir / "vocab.txt"
    if vocab_path.exists():
        vocab = Vocabulary.load(vocab_path)
    else:
        vocab = Vocabulary.build(
            tokenize_all([c for caps in train.captions for c in caps], lowercase=True),
            args.vocab_size,
            args.min_count,
        )
        vocab.save(vocab_path)
    return train, val, test, vocab


def extract_features(args: argparse.Namespace, run_dir: Path, train, val):
    """The frozen backbone and its cached region features of the training and validation images.

    Outside the strategy's scope: the backbone is not trained, so it is neither replicated nor
    synchronised, and each worker runs it on its own host."""
    keras.mixed_precision.set_global_policy("float32")  # the backbone runs in float32
    try:
        backbone = make_backbone(args.backbone, backbone_weights(args), args.image_size)
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot load backbone weights {args.backbone_weights!r}: {e}") from e
    features = {
        "train": cached_regions(args, run_dir, backbone, "train", train, False),
        "validation": cached_regions(args, run_dir, backbone, "validation", val, False),
    }
    if args.flip:
        features["train"] = np.concatenate(
            [features["train"], cached_regions(args, run_dir, backbone, "train", train, True)]
        )
    configure_precision(args.mixed_precision)  # back to the run's policy for the decoder
    return backbone, features


class CaptionTask(Task):
    """The captioner's steps of the training skeleton (see training/task.py)."""

    parser = staticmethod(build_parser)
    data_flags = (
        "flickr8k",
        "synthetic",
        "tfds",
        "train_split",
        "eval_split",
        "backbone",
        "backbone_weights",
        "image_size",
        "flip",
    )
    architecture_flags = (
        "cell",
        "embedding_dim",
        "units",
        "decoder_layers",
        "attention",
        "vocab_size",
        "min_count",
        "max_length",
    )
    extra_hyperparameters = ("length_penalty",)
    signatures = "caption, caption_beam"

    def prepare(self, run: Run) -> None:
        self.train, self.val, self.test, self.vocab = prepare(self.args, run.run_dir)

    def prepare_unreplicated(self, run: Run) -> None:
        self.backbone, self.features = extract_features(self.args, run.run_dir, self.train, self.val)
        self.regions, self.feature_dim = self.features["train"].shape[1:]

    def build_model(self) -> Captioner:
        return build_model(self.args, self.vocab, self.regions, self.feature_dim)

    def example_inputs(self):
        return example_inputs(self.regions, self.feature_dim)

    def datasets(self, replicas: int):
        args, train, vocab = self.args, self.train, self.vocab
        batch = args.batch_size * replicas
        captions = train.captions + ([data.mirror_captions(c) for c in train.captions] if args.flip else [])
        return (
            data.make_dataset(
                self.features["train"],
                data.encode_captions(captions, vocab, args.max_length),
                batch,
                shuffle=True,
                seed=args.seed,
            ),
            data.make_dataset(
                self.features["validation"],
                data.encode_captions(self.val.captions, vocab, args.max_length),
                batch,
                shuffle=False,
            ),
        )

    def exporter(self, model: keras.Model):
        # Imported here, so a finished run can be re-exported by newer export code.
        from seq2seq_app.captioning.captioner_export import CaptionerExport

        args = self.args
        return CaptionerExport(
            self.backbone, model, self.vocab, args.image_size, args.max_length, args.length_penalty
        ).save

    def describe(self, path: Path, run: Run) -> dict:
        from seq2seq_app.captioning.captioner_api import LoadedCaptioner

        args, train, val, test = self.args, self.train, self.val, self.test
        return {
            "title": f"{args.data_name} captioner ({args.backbone} regions, {args.cell.upper()} decoder with "
            f"{args.attention} attention)",
            "description": "One-to-many model: encoded image bytes in, a caption out, with the attention "
            "over image regions for every word. Loads with `tensorflow` alone.",
            "task": "caption",
            "data": {
                "source": args.flickr8k or args.tfds or f"synthetic shapes ({args.synthetic} images)",
                "credit": args.data_credit,
                "train_images": len(train),
                "validation_images": len(val),
                "test_images": len(test),
                "train_captions": sum(len(c) for c in train.captions),
                "unreadable_images": train.unreadable + val.unreadable + test.unreadable,
                "malformed_caption_lines": train.malformed + val.malformed + test.malformed,
                "vocab": len(self.vocab),
                "mirrored_training_images": args.flip,
            },
            "backbone": {
                "name": args.backbone,
                "weights": args.backbone_weights,
                "credit": args.backbone_credit,
                "image_size": args.image_size,
                "frozen": True,
            },
            "metrics": {
                "test_split": f"{len(test)} images, half of the '{args.eval_split}' split (seed {args.seed})"
                if args.flickr8k and (Path(args.flickr8k) / data.SPLITS_FILE).exists()
                else f"{len(test)} images carved from the data (seed {args.seed})",
                **evaluate(LoadedCaptioner(path), test),
            },
        }

    def parameter_counts(self, model: keras.Model) -> dict:
        return {
            "decoder_parameters": model.count_params(),
            "backbone_parameters": self.backbone.count_params(),
        }


def run(args: argparse.Namespace) -> dict:
    """Everything `main` does, callable from Python and tests; returns the model card."""
    return run_task(CaptionTask(args))


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow()
    run(flags.parse_with_config(build_parser(), argv))


if __name__ == "__main__":
    main()
