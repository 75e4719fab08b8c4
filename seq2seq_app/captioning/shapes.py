"""A synthetic captioning dataset: two coloured shapes per image, captioned by colour, shape and place.

Small enough to train a captioner in minutes on a CPU, and hard enough to need the image: the
caption names both shapes' colours and kinds and how they are placed, so a decoder that ignores
the encoder can only guess. Write it in the Flickr8k layout to train with the same reader:

    python -m seq2seq_app.captioning.shapes data/shapes --n 2000
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.captioning.data import CAPTIONS_FILE, IMAGES_DIR, SPLITS_FILE, CaptionedImages
from seq2seq_app.core.splits import grouped_split

COLOURS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
SHAPES = ("circle", "square", "triangle")
MIN_SIZE = 32


def _mask(kind: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    """Boolean [size, size] mask of a shape centred at (cx, cy) that fits a 2r × 2r box."""
    y, x = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r**2
    if kind == "square":
        # 0.85 r keeps the square's area close to the circle's, so size does not give kind away.
        return (np.abs(x - cx) <= 0.85 * r) & (np.abs(y - cy) <= 0.85 * r)
    # Upward triangle: apex at the top of the box, base along its bottom.
    depth = (y - (cy - r)) / (2 * r)
    return (depth >= 0) & (depth <= 1) & (np.abs(x - cx) <= depth * r)


def _captions(first: str, second: str, horizontal: bool, extra: bool) -> list[str]:
    """Reference phrasings for `first` left of (or above) `second`."""
    if horizontal:
        captions = [f"a {first} left of a {second}", f"a {second} right of a {first}"]
        return captions + [f"a {first} to the left of a {second}"] * extra
    captions = [f"a {first} above a {second}", f"a {second} below a {first}"]
    return captions + [f"a {second} under a {first}"] * extra


def make_shapes_dataset(n: int, seed: int = 0, size: int = 64) -> CaptionedImages:
    """`n` PNG images of two shapes in different colours, one left of or above the other.

    Shapes are circles, squares or triangles in red, green, blue or yellow on a plain light grey;
    the two always differ in colour. Each image has two or three reference captions, the first
    always `a FIRST left of a SECOND` or `a FIRST above a SECOND`. The shapes are placed so
    the relation is never in doubt: side-by-side shapes sit in different halves of the image at
    about the same height (stacked ones likewise). The same `n`, `seed` and `size` always give
    the same bytes.

    Args:
        n: number of images.
        seed: the random seed.
        size: image width and height in pixels (at least 32; below that small circles and
            triangles are a few pixels wide and hard to tell apart).

    Example:
    >>> data = make_shapes_dataset(2, seed=0)
    >>> data.names
    ['shape_00001.png', 'shape_00002.png']
    >>> data.captions[1]
    ['a red triangle above a blue square', 'a blue square below a red triangle']
    """
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} pixels for shapes to be told apart; got {size}")
    rng = np.random.default_rng(seed)
    colour_names = list(COLOURS)
    width = max(5, len(str(n)))  # zero-padded, so sorting names keeps generation order
    margin = max(1.0, 0.04 * size)
    images, names, captions = [], [], []
    for i in range(n):
        colours = [colour_names[c] for c in rng.choice(len(colour_names), 2, replace=False)]
        kinds = [SHAPES[k] for k in rng.integers(len(SHAPES), size=2)]
        horizontal = bool(rng.integers(2))
        radii = rng.uniform(0.12 * size, 0.19 * size, 2)
        # "along" is the axis of the relation: the first shape lies in the first half, the
        # second in the other, at least 2 pixels apart. "across" is shared up to a small jitter,
        # so a pair side by side is never also clearly one above the other.
        along = [
            rng.uniform(radii[0] + margin, size / 2 - radii[0] - 1),
            rng.uniform(size / 2 + radii[1] + 1, size - radii[1] - margin),
        ]
        base = rng.uniform(0.3 * size, 0.7 * size)
        across = [
            float(np.clip(base + rng.uniform(-0.06, 0.06) * size, r + margin, size - r - margin))
            for r in radii
        ]
        background = int(rng.integers(225, 251))
        extra = bool(rng.integers(2))

        image = np.full((size, size, 3), background, np.uint8)
        for kind, colour, a, c, r in zip(kinds, colours, along, across, radii):
            cx, cy = (a, c) if horizontal else (c, a)
            image[_mask(kind, cx, cy, r, size)] = COLOURS[colour]
        images.append(tf.io.encode_png(image).numpy())
        names.append(f"shape_{i + 1:0{width}d}.png")
        first, second = (f"{colour} {kind}" for colour, kind in zip(colours, kinds))
        captions.append(_captions(first, second, horizontal, extra))
    return CaptionedImages(images, names, captions)


def write_flickr8k_format(
    data: CaptionedImages, folder: str | Path, splits: dict[str, str] | None = None
) -> Path:
    """Writes `images/NAME`, `captions.token.txt` and (given `splits`) `splits.tsv` under `folder`.

    `read_flickr8k(folder, split)` reads it back. Images missing from `splits` are written as
    split `none`; with `splits=None` no `splits.tsv` is written (and a stale one is removed, so
    it cannot mislabel the new images). Whitespace inside captions is collapsed to single spaces,
    since a tab or newline would break the line format.

    Args:
        data: the images and captions; names must be plain, distinct file names.
        folder: the output folder, created if needed; files already there are overwritten.
        splits: image name -> split (e.g. train/dev/test).

    Example:
    >>> data = make_shapes_dataset(4)
    >>> write_flickr8k_format(data, "/tmp/shapes", {"shape_00001.png": "dev"})  # doctest: +SKIP
    PosixPath('/tmp/shapes')
    """
    folder = Path(folder)
    bad = [n for n in data.names if not n or Path(n).name != n or any(c in n for c in "\t\r\n#")]
    if bad:
        raise ValueError(f"image names must be plain file names without tabs, newlines or '#': {bad[0]!r}")
    if len(set(data.names)) != len(data.names):
        raise ValueError("image names must be distinct; each becomes a file in images/")
    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    lines = []
    for encoded, name, captions in zip(data.images, data.names, data.captions):
        (folder / IMAGES_DIR / name).write_bytes(encoded)
        cleaned = (" ".join(c.split()) for c in captions)
        lines.extend(f"{name}#{j}\t{c}\n" for j, c in enumerate(c for c in cleaned if c))
    (folder / CAPTIONS_FILE).write_text("".join(lines), encoding="utf-8")
    splits_path = folder / SPLITS_FILE
    if splits is None:
        splits_path.unlink(missing_ok=True)
    else:
        rows = [f"{name}\t{' '.join(splits.get(name, 'none').split()) or 'none'}\n" for name in data.names]
        splits_path.write_text("image\tsplit\n" + "".join(rows), encoding="utf-8")
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m seq2seq_app.captioning.shapes",
        description="Write the synthetic two-shapes captioning dataset in the Flickr8k layout.",
    )
    parser.add_argument("out_dir", help="folder to write images/, captions.token.txt and splits.tsv into")
    parser.add_argument("--n", type=int, default=2000, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64, help="image width and height in pixels")
    parser.add_argument("--validation", type=float, default=0.1, help="fraction of images in split dev")
    parser.add_argument("--test", type=float, default=0.1, help="fraction of images in split test")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    data = make_shapes_dataset(args.n, args.seed, args.size)
    parts = grouped_split(data.names, args.validation, args.test, args.seed)
    splits = {data.names[i]: split for split, part in zip(("train", "dev", "test"), parts) for i in part}
    write_flickr8k_format(data, args.out_dir, splits)
    counts = ", ".join(f"{len(part)} {split}" for split, part in zip(("train", "dev", "test"), parts))
    n_captions = sum(map(len, data.captions))
    print(f"Wrote {len(data)} images ({counts}) and {n_captions} captions to {args.out_dir}")


if __name__ == "__main__":
    main()
