"""Captioned images for image captioning: reading (Flickr8k layout, TFDS COCO) and splitting."""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from seq2seq_app.core.splits import grouped_split

CAPTIONS_FILE = "captions.token.txt"
SPLITS_FILE = "splits.tsv"
IMAGES_DIR = "images"


@dataclasses.dataclass
class CaptionedImages:
    """Encoded images, their names and every reference caption of each, plus what was skipped.

    `unreadable` counts images that were missing or did not decode; `malformed` counts caption
    lines (or TFDS captions) that could not be used.
    """

    images: list[bytes]
    names: list[str]
    captions: list[list[str]]
    unreadable: int = 0
    malformed: int = 0

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: Sequence[int]) -> CaptionedImages:
        return CaptionedImages(
            [self.images[i] for i in index], [self.names[i] for i in index], [self.captions[i] for i in index]
        )


def decodes(encoded: bytes) -> bool:
    """Whether the exported model's own decoder reads the bytes as an image (status "ok").

    Using the graph's decoder keeps training and serving in agreement: an image the SavedModel
    would refuse (WebP, over 50 Mpx, a palette BMP, a corrupt or badly truncated file) is counted
    unreadable instead of being trained on as a blank.
    """
    from seq2seq_app.core.images import STATUS_OK, decode_images

    _, status = decode_images(tf.constant([encoded], tf.string), 8)
    return status.numpy()[0].decode() == STATUS_OK


def _parse_caption_line(raw: bytes) -> tuple[str, str] | None:
    """(image name, caption) from `IMAGE.jpg#N<TAB>caption`, or None if the line is malformed."""
    try:
        # utf-8-sig: a byte-order mark at the start of the file is not part of the first name.
        line = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    key, tab, caption = line.partition("\t")
    name, hash_, number = key.strip().rpartition("#")
    caption = caption.strip()
    # A name with a path in it would read a file outside images/; it is a broken line, not a path.
    if not tab or not hash_ or not name or not number.isdigit() or not caption or Path(name).name != name:
        return None
    return name, caption


def _read_splits(path: Path) -> dict[str, str]:
    """Image name -> split from `splits.tsv` (header `image<TAB>split`)."""
    lines = path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()
    header = lines[0].split("\t") if lines else []
    if "image" not in header or "split" not in header:
        raise ValueError(f"{path} must start with the header 'image<TAB>split'; its first line is {header}")
    ni, si = header.index("image"), header.index("split")
    splits = {}
    for line in lines[1:]:
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) > max(ni, si) and fields[ni] and fields[si]:
            splits[fields[ni]] = fields[si]
    return splits


def read_flickr8k(folder: str | Path, split: str | None = None) -> CaptionedImages:
    """Reads a folder in the Flickr8k layout: `images/`, `captions.token.txt`, optional `splits.tsv`.

    Caption lines are `IMAGE.jpg#N<TAB>caption`; lines with no tab, no `#N`, an empty caption or
    invalid UTF-8 are counted as malformed and skipped (blank lines are ignored). Images that have
    captions but are missing from `images/` or do not decode are counted as unreadable and
    skipped. Images are sorted by name. `malformed` counts the whole captions file; `unreadable`
    counts only the images of the selected split, since only those are read.

    Args:
        folder: the dataset folder.
        split: keep only images whose `splits.tsv` value equals this (Flickr8k here uses
            train/dev/test/none); None keeps every image that has captions.

    Example:
    >>> train = read_flickr8k("../shared/data/flickr8k", "train")  # doctest: +SKIP
    >>> len(train), train.names[0], train.captions[0][0]  # doctest: +SKIP
    (753, '1000268201_693b08cb0e.jpg', 'A child in a pink dress is climbing up a set of stairs ...')
    """
    folder = Path(folder)
    captions_path, images_dir, splits_path = folder / CAPTIONS_FILE, folder / IMAGES_DIR, folder / SPLITS_FILE
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} is not a folder; expected one with {IMAGES_DIR}/ and {CAPTIONS_FILE}"
        )
    for needed in (captions_path, images_dir):
        if not needed.exists():
            raise FileNotFoundError(
                f"{needed} does not exist; a Flickr8k-layout folder needs {IMAGES_DIR}/ and {CAPTIONS_FILE}"
            )

    by_image: dict[str, list[str]] = collections.defaultdict(list)
    malformed = 0
    for raw in captions_path.read_bytes().splitlines():
        if not raw.strip():
            continue
        parsed = _parse_caption_line(raw)
        if parsed is None:
            malformed += 1
            continue
        by_image[parsed[0]].append(parsed[1])

    names = sorted(by_image)
    if split is not None:
        if not splits_path.exists():
            raise FileNotFoundError(f"split {split!r} was asked for but {splits_path} does not exist")
        splits = _read_splits(splits_path)
        if split not in set(splits.values()):
            raise ValueError(
                f"{splits_path} has no image in split {split!r}; it has {sorted(set(splits.values()))}"
            )
        names = [n for n in names if splits.get(n) == split]

    images, kept, unreadable = [], [], 0
    for name in names:
        path = images_dir / name
        encoded = path.read_bytes() if path.is_file() else b""
        if not decodes(encoded):
            unreadable += 1
            continue
        images.append(encoded)
        kept.append(name)
    return CaptionedImages(images, kept, [by_image[n] for n in kept], unreadable, malformed)


def _text(value) -> str | None:
    """A TFDS string (bytes) as text, or None if it is not valid UTF-8 or is empty."""
    try:
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    except UnicodeDecodeError:
        return None
    return text.strip() or None


def _collect_tfds(examples: Iterable[dict]) -> CaptionedImages:
    """CaptionedImages from TFDS examples with `image`, `image/filename` and `captions`/`text`."""
    rows, unreadable, malformed = [], 0, 0
    for ex in examples:
        # TFDS nests a Sequence of dicts: ex["captions"]["text"] is an array of all captions.
        raw_captions = ex["captions"]["text"] if "captions" in ex else ex["captions/text"]
        captions = [c for c in (_text(t) for t in np.atleast_1d(raw_captions)) if c]
        malformed += len(np.atleast_1d(raw_captions)) - len(captions)
        name = _text(ex["image/filename"])
        image = np.asarray(ex["image"])
        is_image = image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] in (1, 3) and image.size
        if not name or not is_image:
            unreadable += 1
            continue
        if not captions:  # its captions are already counted as malformed
            continue
        rows.append((name, tf.io.encode_jpeg(image, quality=95).numpy(), captions))
    rows.sort(key=lambda row: row[0])
    names, images, captions = ([row[k] for row in rows] for k in range(3))
    return CaptionedImages(images, names, captions, unreadable, malformed)


def read_tfds_coco(split: str, data_dir: str | Path | None = None) -> CaptionedImages:
    """Reads TFDS `coco_captions` (Karpathy splits: train, val, test, restval; downloads ~38 GB).

    Each image is re-encoded as JPEG (quality 95) and held in memory, so slice big splits,
    e.g. `split="train[:10000]"`. Empty or non-UTF-8 captions are counted as malformed; an image
    left with no caption is skipped.

    Args:
        split: a TFDS split, slicing allowed.
        data_dir: where TFDS keeps its data (None: `~/tensorflow_datasets`).

    Example:
    >>> val = read_tfds_coco("val[:500]")  # doctest: +SKIP
    """
    import tensorflow_datasets as tfds

    dataset = tfds.load("coco_captions", split=split, data_dir=data_dir)
    return _collect_tfds(tfds.as_numpy(dataset))


def split_images(
    data: CaptionedImages, validation: float, test: float, seed: int = 0
) -> tuple[CaptionedImages, CaptionedImages, CaptionedImages]:
    """Training, validation and test splits keyed by image name.

    Every entry of one image (with all its captions) lands in one split, so no test image has
    been seen in training with a different caption.

    Example:
    >>> train, val, test = split_images(read_flickr8k("../shared/data/flickr8k"), 0.1, 0.1)  # doctest: +SKIP
    """
    parts = grouped_split(data.names, validation, test, seed)
    return tuple(data.subset(p) for p in parts)  # type: ignore[return-value]


def extract_regions(
    backbone, images: Sequence[bytes], image_size: int, flip: bool = False, batch_size: int = 32
) -> np.ndarray:
    """Runs a frozen backbone over encoded images once, for caching: float16 [n, regions, channels].

    Pixels come from `seq2seq_app.core.images.decode_images`, the function the exported model
    uses, so cached training features match what the SavedModel computes from bytes.

    Args:
        backbone: pixels → regions model (see `seq2seq_app.captioning.backbones.make_backbone`).
        images: encoded image bytes.
        image_size: the backbone's input size.
        flip: mirror the images left–right first (augmentation).
        batch_size: images per backbone call.
    """
    from seq2seq_app.core.images import decode_images

    @tf.function
    def regions(batch):
        pixels, _ = decode_images(batch, image_size)
        if flip:
            pixels = tf.image.flip_left_right(pixels)
        return backbone(pixels, training=False)

    chunks = [
        regions(tf.constant(list(images[i : i + batch_size]))).numpy().astype(np.float16)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0, 0), np.float16)


def mirror_captions(captions: Sequence[str]) -> list[str]:
    """The captions of a left–right mirrored image: "left" and "right" swap places.

    Example:
    >>> mirror_captions(["a red circle left of a blue square", "A dog on the Right"])
    ['a red circle right of a blue square', 'A dog on the Left']
    """
    swap = {
        "left": "right",
        "right": "left",
        "Left": "Right",
        "Right": "Left",
        "LEFT": "RIGHT",
        "RIGHT": "LEFT",
    }
    return [
        re.sub(r"\b(left|right|Left|Right|LEFT|RIGHT)\b", lambda m: swap[m.group(1)], c) for c in captions
    ]


def encode_captions(captions: Sequence[Sequence[str]], vocab, max_length: int) -> list[list[np.ndarray]]:
    """Each image's captions as `[START] … [END]` id arrays (cut at `max_length` words)."""
    from seq2seq_app.core.text import tokenize_all
    from seq2seq_app.core.vocabulary import END_ID, START_ID

    flat = [c for caps in captions for c in caps]
    ids = vocab.encode_numpy(tokenize_all(flat, lowercase=True)) if flat else []
    out, k = [], 0
    for caps in captions:
        out.append(
            [
                np.concatenate([[START_ID], ids[k + j][:max_length], [END_ID]]).astype(np.int32)
                for j in range(len(caps))
            ]
        )
        k += len(caps)
    return out


def make_dataset(
    features: np.ndarray,
    caption_ids: Sequence[Sequence[np.ndarray]],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of `({"features", "target_in"}, target_out)`, one example per (image, caption).

    Row `i` of `features` is paired with `caption_ids[i]` (mirrored copies come with their own,
    mirrored captions).
    """
    if len(features) != len(caption_ids):
        raise ValueError(f"{len(features)} feature rows but captions for {len(caption_ids)} images")
    pairs = [(i, ids) for i in range(len(features)) for ids in caption_ids[i]]
    order = np.random.default_rng(seed)

    def generate():
        index = order.permutation(len(pairs)) if shuffle else range(len(pairs))
        for p in index:
            i, ids = pairs[p]
            yield features[i].astype(np.float32), ids

    spec = (tf.TensorSpec(features.shape[1:], tf.float32), tf.TensorSpec([None], tf.int32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
    dataset = dataset.padded_batch(batch_size, padding_values=(0.0, 0))

    def to_inputs(f, t):
        return {"features": f, "target_in": t[:, :-1]}, t[:, 1:]

    return dataset.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
