"""Captioning data: the Flickr8k-layout reader, the TFDS COCO reader, splits and the shapes generator."""

import re

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_app.captioning import data, shapes


def jpeg(seed: int = 0, size: int = 32) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


def png(size: int = 16) -> bytes:
    return tf.io.encode_png(np.full((size, size, 3), 200, np.uint8)).numpy()


@pytest.fixture
def folder(tmp_path):
    """A tiny Flickr8k-layout folder with every kind of damage the reader has to survive."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg(0))
    (images / "b.png").write_bytes(png())
    whole = jpeg(1, size=64)
    (images / "c.jpg").write_bytes(whole[:20] + b"garbage" * 10)  # a JPEG header, then no image
    (images / "d.jpg").write_text("not a picture\n")  # text file named .jpg
    (images / "f.jpg").write_bytes(jpeg(2))  # has no captions: not part of the data
    # e.jpg has captions but no file.
    lines = [
        "\ufeffa.jpg#0\tA dog runs .".encode(),
        b"a.jpg#1\t  A brown dog running on grass .  \r",
        b"b.png#0\tA grey square .",
        b"c.jpg#0\tCut off .",
        b"d.jpg#0\tText .",
        b"e.jpg#0\tGone .",
        b"",  # blank lines are ignored, not counted
        b"no tab at all",
        b"a.jpg 2\tno hash",
        b"a.jpg#3\t   ",  # empty caption
        b"a.jpg#4\t\xff\xfe invalid utf-8",
        b"../a.jpg#0\tescapes images/",
        b"a.jpg#x\tnot a caption number",
    ]
    (tmp_path / "captions.token.txt").write_bytes(b"\n".join(lines) + b"\n")
    splits = "image\tsplit\na.jpg\ttrain\nb.png\tdev\nc.jpg\ttrain\nd.jpg\tnone\ne.jpg\ttrain\n"
    (tmp_path / "splits.tsv").write_text(splits)
    return tmp_path


def test_reader_counts_malformed_lines_and_unreadable_images(folder):
    read = data.read_flickr8k(folder)
    assert read.names == ["a.jpg", "b.png"]
    assert read.captions == [["A dog runs .", "A brown dog running on grass ."], ["A grey square ."]]
    assert read.images[0] == (folder / "images" / "a.jpg").read_bytes()
    assert read.unreadable == 3  # c (corrupt), d (text), e (missing)
    assert read.malformed == 6
    assert len(read) == 2
    assert tf.io.decode_image(read.images[1]).shape == (16, 16, 3)


def test_split_selection(folder):
    train = data.read_flickr8k(folder, "train")
    assert (train.names, train.unreadable, train.malformed) == (["a.jpg"], 2, 6)
    dev = data.read_flickr8k(folder, "dev")
    assert (dev.names, dev.unreadable) == (["b.png"], 0)
    assert len(data.read_flickr8k(folder, "none")) == 0  # d.jpg is its only image, and unreadable
    with pytest.raises(ValueError, match=r"'val'; it has \['dev', 'none', 'train'\]"):
        data.read_flickr8k(folder, "val")
    (folder / "splits.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="splits.tsv"):
        data.read_flickr8k(folder, "train")
    assert data.read_flickr8k(folder).names == ["a.jpg", "b.png"]  # no split needs no splits.tsv


def test_missing_folder_or_captions_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere"))):
        data.read_flickr8k(tmp_path / "nowhere")
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="captions.token.txt"):
        data.read_flickr8k(tmp_path)
    (tmp_path / "splits.tsv").write_text("name\tfold\n")
    (tmp_path / "captions.token.txt").write_text("x.jpg#0\tA cat .\n")
    with pytest.raises(ValueError, match="header"):
        data.read_flickr8k(tmp_path, "train")


def test_coco_reader_reencodes_images_and_uses_the_tfds_keys(monkeypatch):
    """TFDS needs the network to download, so `tfds.load` is replaced by an in-memory dataset."""
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    examples = [
        ("b.jpg", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), [b"A bus .", b" "]),
        ("a.jpg", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), [b"A cat .", b"\xff", b"A cat sits ."]),
        ("c.jpg", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), [b""]),
    ]
    signature = {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "image/filename": tf.TensorSpec([], tf.string),
        "captions": {"text": tf.TensorSpec([None], tf.string)},
    }
    calls = []

    def fake_load(name, split, data_dir=None):
        calls.append((name, split, data_dir))
        rows = ({"image": im, "image/filename": n, "captions": {"text": c}} for n, im, c in examples)
        return tf.data.Dataset.from_generator(lambda: rows, output_signature=signature)

    monkeypatch.setattr(tfds, "load", fake_load)
    coco = data.read_tfds_coco("val[:3]", data_dir="/tmp/tfds")
    assert calls == [("coco_captions", "val[:3]", "/tmp/tfds")]
    assert coco.names == ["a.jpg", "b.jpg"]  # sorted; c.jpg has no usable caption
    assert coco.captions == [["A cat .", "A cat sits ."], ["A bus ."]]
    assert coco.malformed == 3 and coco.unreadable == 0
    assert tf.io.is_jpeg(coco.images[1]).numpy()
    assert tf.io.decode_jpeg(coco.images[1]).shape == (12, 20, 3)


def test_split_images_keeps_each_image_in_one_split():
    names = [f"img{i % 40}.jpg" for i in range(120)]  # the same image three times over
    captioned = data.CaptionedImages([n.encode() for n in names], names, [[f"caption of {n}"] for n in names])
    train, val, test = data.split_images(captioned, 0.1, 0.2, seed=3)
    assert len(train) + len(val) + len(test) == 120
    assert (len(set(val.names)), len(set(test.names))) == (4, 8)
    assert not set(train.names) & set(val.names) and not set(train.names) & set(test.names)
    assert not set(val.names) & set(test.names)
    for part in (train, val, test):  # images and captions stay with their names
        for image, name, caption in zip(part.images, part.names, part.captions):
            assert image == name.encode() and caption == [f"caption of {name}"]
    assert data.split_images(captioned, 0.1, 0.2, seed=3)[2].names == test.names


def test_shapes_are_deterministic():
    first, again = shapes.make_shapes_dataset(12, seed=4), shapes.make_shapes_dataset(12, seed=4)
    assert first.images == again.images and first.captions == again.captions
    assert first.names == [f"shape_{i:05d}.png" for i in range(1, 13)]
    assert shapes.make_shapes_dataset(12, seed=5).images != first.images
    assert all(2 <= len(c) <= 3 for c in first.captions)
    assert tf.io.decode_png(first.images[0]).shape == (64, 64, 3)
    assert tf.io.decode_png(shapes.make_shapes_dataset(1, size=32).images[0]).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="size"):
        shapes.make_shapes_dataset(1, size=8)


CAPTION = re.compile(r"a (\w+) (\w+) (left of|above) a (\w+) (\w+)")


def describe(image: np.ndarray) -> str:
    """Reads the canonical caption back off the pixels: colour, kind and place of each shape."""
    found = []
    for colour, rgb in shapes.COLOURS.items():
        ys, xs = np.nonzero(np.all(image == rgb, axis=-1))
        if len(xs):
            # A square fills its bounding box; a triangle is widest at its bottom row, a circle mid-way.
            rows = np.bincount(ys)[ys.min() :]
            fill = len(xs) / ((np.ptp(xs) + 1) * (np.ptp(ys) + 1))
            wide_base = rows[-1] >= 0.8 * rows.max() and rows[0] < 0.5 * rows.max()
            kind = "square" if fill > 0.95 else "triangle" if wide_base else "circle"
            found.append((xs.mean(), ys.mean(), f"{colour} {kind}"))
    assert len(found) == 2, "each image has exactly two colours of shape"
    (x1, y1, s1), (x2, y2, s2) = found
    if abs(x1 - x2) > abs(y1 - y2):
        first, second = sorted(found)
        return f"a {first[2]} left of a {second[2]}"
    first, second = sorted(found, key=lambda f: f[1])
    return f"a {first[2]} above a {second[2]}"


def test_shape_captions_are_determined_by_the_pixels():
    generated = shapes.make_shapes_dataset(80, seed=1)
    relations = set()
    for encoded, captions in zip(generated.images, generated.captions):
        image = tf.io.decode_png(encoded).numpy()
        assert captions[0] == describe(image)
        c1, k1, relation, c2, k2 = CAPTION.fullmatch(captions[0]).groups()
        relations.add(relation)
        assert c1 != c2
        for other in captions[1:]:  # the other phrasings name the same two shapes
            assert f"{c1} {k1}" in other and f"{c2} {k2}" in other
        # The left (or upper) shape's pixels all lie left of (above) every pixel of the other.
        axis = 1 if relation == "left of" else 0
        first = np.nonzero(np.all(image == shapes.COLOURS[c1], axis=-1))[axis]
        second = np.nonzero(np.all(image == shapes.COLOURS[c2], axis=-1))[axis]
        assert first.max() < second.min()
    assert relations == {"left of", "above"}


def test_shapes_round_trip_through_the_flickr8k_layout(tmp_path):
    generated = shapes.make_shapes_dataset(10, seed=2)
    splits = {name: "dev" for name in generated.names[:3]} | {generated.names[3]: "train"}
    shapes.write_flickr8k_format(generated, tmp_path / "out", splits)
    read = data.read_flickr8k(tmp_path / "out")
    assert (read.images, read.names, read.captions) == (generated.images, generated.names, generated.captions)
    assert (read.unreadable, read.malformed) == (0, 0)
    assert data.read_flickr8k(tmp_path / "out", "dev").names == generated.names[:3]
    assert len(data.read_flickr8k(tmp_path / "out", "none")) == 6  # not in `splits`

    # Without splits, a stale splits.tsv from the last write must not mislabel the new images.
    shapes.write_flickr8k_format(generated.subset(range(4)), tmp_path / "out")
    assert not (tmp_path / "out" / "splits.tsv").exists()
    assert data.read_flickr8k(tmp_path / "out").names == generated.names[:4]
    with pytest.raises(ValueError, match="plain file names"):
        shapes.write_flickr8k_format(data.CaptionedImages([b""], ["x/y.png"], [["a"]]), tmp_path / "bad")


def test_shapes_command_line_writes_a_split_dataset(tmp_path, capsys):
    shapes.main([str(tmp_path / "demo"), "--n", "30", "--seed", "1", "--size", "32"])
    sizes = {s: len(data.read_flickr8k(tmp_path / "demo", s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 24, "dev": 3, "test": 3}
    assert "Wrote 30 images" in capsys.readouterr().out
