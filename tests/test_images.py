import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from seq2seq_app.core.images import decode_images
from tests.image_cases import CORRUPT, GOOD, JPEG, NOISE, NOT_IMAGES, PROGRESSIVE, RECOVERABLE, encode


def _status(images, size=16):
    pixels, status = decode_images(tf.constant(images, tf.string), size)
    return pixels.numpy(), [s.decode() for s in status.numpy()]


@pytest.mark.parametrize(
    "data, expected",
    [pytest.param(d, "corrupt", id=n) for n, d in CORRUPT.items()]
    + [pytest.param(d, "not an image", id=n) for n, d in NOT_IMAGES.items()]
    + [pytest.param(d, "ok", id=n) for n, d in RECOVERABLE.items()],
)
def test_one_bad_image_never_costs_the_others_their_pixels(data, expected):
    alone, _ = _status([GOOD])
    pixels, status = _status([GOOD, data, GOOD])
    assert status == ["ok", expected, "ok"]
    np.testing.assert_array_equal(pixels[0], alone[0])
    np.testing.assert_array_equal(pixels[2], alone[0])
    if expected != "ok":
        assert np.all(pixels[1] == 0)


def test_every_kind_of_corrupt_image_in_one_batch():
    batch = [GOOD, *CORRUPT.values(), GOOD]
    _, status = _status(batch)
    assert status == ["ok"] + ["corrupt"] * len(CORRUPT) + ["ok"]


@pytest.mark.parametrize(
    "image",
    [
        NOISE.convert("L"),
        NOISE.convert("P"),
        NOISE.convert("I;16"),
        NOISE.convert("RGBA"),
    ],
)
@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG", "BMP"])
def test_intact_images_of_every_mode_stay_ok(image, fmt):
    if fmt == "JPEG" and image.mode in ("P", "I;16", "RGBA"):
        image = image.convert("RGB")
    if fmt in ("GIF", "BMP") and image.mode == "I;16":
        image = image.convert("L")
    data = encode(image, fmt)
    expected = "unsupported" if fmt == "BMP" and image.mode in ("L", "P") else "ok"
    assert _status([data])[1] == [expected]


def test_progressive_cmyk_and_exif_jpegs_stay_ok():
    images = [
        PROGRESSIVE,
        encode(NOISE.convert("CMYK"), "JPEG"),
        encode(NOISE, "JPEG", exif=b"Exif\0\0" + bytes(64)),
        b"\xff\xd8" + b"\xff" * 5 + JPEG[2:],  # fill bytes before a marker are allowed
    ]
    assert _status(images)[1] == ["ok"] * 4


def test_decode_images_handles_every_kind_of_input():
    big = encode(Image.new("RGB", (6000, 6000), (10, 200, 30)), "JPEG")
    bomb = bytearray(encode(Image.new("L", (4, 4))))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # header claims 100,000 × 100,000 pixels
    inputs = [
        encode(Image.new("L", (30, 20), 128)),  # greyscale
        encode(Image.new("RGBA", (30, 20), (255, 0, 0, 0))),  # fully transparent → white
        encode(Image.new("RGB", (1, 1), (0, 255, 0))),
        encode(Image.new("RGB", (9, 9), (0, 0, 255)), "GIF"),
        encode(Image.new("RGB", (9, 9), (0, 0, 255)), "BMP"),
        big,
        b"",
        b"just some text\n",
        bytes(bomb),
    ]
    pixels, status = _status(inputs, 32)
    assert pixels.shape == (9, 32, 32, 3)
    assert status == ["ok"] * 6 + ["not an image", "not an image", "too large"]
    centre = pixels[:, 16, 16].round()
    assert centre[0].tolist() == [128, 128, 128] and centre[1].tolist() == [255, 255, 255]
    assert centre[2].tolist() == [0, 255, 0] and centre[5].tolist() == [10, 200, 30]
    assert np.all(pixels[6:] == 0)


def test_animated_gifs_decode_their_first_frame_only_and_palette_bmps_are_refused():
    frames = [Image.new("RGB", (400, 400), (i * 20, 0, 0)) for i in range(10)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    pixels, status = _status([buffer.getvalue(), encode(Image.new("P", (8, 8), 3), "BMP")])
    assert status == ["ok", "unsupported"]
    assert pixels[0, 8, 8].round().tolist() == [0, 0, 0]  # frame 0 is black


def test_an_empty_batch_gives_empty_outputs():
    pixels, status = _status([], 8)
    assert pixels.shape == (0, 8, 8, 3) and status == []
